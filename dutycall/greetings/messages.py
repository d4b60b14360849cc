"""The greetings package's user-visible messages, registered into the one catalogue."""

from __future__ import annotations

from ..messages import CATALOGUE, EN, ZH


def _m(zh: str, en: str) -> dict[str, str]:
    return {ZH: zh, EN: en}


MESSAGES: dict[str, dict[str, str]] = {
    "greetings.not_found": _m("没有编号为 {id} 的慰问，或不在您的管辖范围内", "No greeting {id} in your scope"),
    "greetings.room_not_found": _m("没有编号为 {id} 的值班室，或不在您的管辖范围内", "No duty room {id} in your scope"),
    "greetings.start_forbidden": _m("只有领导、主持人和管理员可以发起慰问",
                                    "Only leaders, hosts and administrators start greetings"),
    "greetings.read_forbidden": _m("您的角色不能查看慰问", "Your role cannot read greetings"),
    "greetings.console_no_report": _m("值班终端不能查看慰问回执", "A console cannot read greeting receipts"),
    "greetings.title": _m("标题应为 1 至 {max} 个字符的文字，不含控制字符",
                          "The title must be text of 1 to {max} characters, no control characters"),
    "greetings.unit_ids": _m("单位应为单位编号的列表", "unit_ids must be a list of unit ids"),
    "greetings.units_not_in_scope": _m("单位 {ids} 不存在或不在您的管辖范围内",
                                       "Units {ids} do not exist or are not in your scope"),
    "greetings.no_rooms": _m("所选范围内没有值班室", "There are no duty rooms in the chosen scope"),
    "greetings.leader_account_id": _m("请指定慰问所代表的领导（领导账号编号）",
                                      "Name the leader the greeting is on behalf of (a leader's account id)"),
    "greetings.leader_not_found": _m("没有编号为 {id} 的领导账号，或不在您的管辖范围内",
                                     "No leader account {id} in your scope"),
    "greetings.scheduled_at": _m("时间应为带时区的 ISO 8601 时间，不早于现在，且在一年之内",
                                 "The time must be an ISO 8601 time with its offset, not in the past and "
                                 "within a year"),
    "greetings.not_startable": _m("慰问当前为“{status}”，不能开始", "The greeting is {status}: it cannot start"),
    "greetings.not_live": _m("慰问当前为“{status}”，未在进行中", "The greeting is {status}, not live"),
    "greetings.not_cancellable": _m("慰问当前为“{status}”，不能取消",
                                    "The greeting is {status}: it cannot be cancelled"),
    "greetings.duty_room_id": _m("请给出值班室编号（或 null 表示收回）",
                                 "Give a duty room id (or null to return the floor)"),
    "greetings.room_not_target": _m("值班室 {id} 不是本次慰问的对象", "Duty room {id} is not greeted by this greeting"),
    "greetings.room_not_watching": _m("值班室 {id} 当前未在观看，不能请其发言",
                                      "Duty room {id} is not watching: it cannot be brought up"),
    "greetings.no_such_action": _m("没有“{action}”这个操作", "No such action \"{action}\""),
    "greetings.media_id": _m("慰问视频应为视频编号（或 null 表示由领导现场讲话）",
                             "media_id must be a greeting video's id (or null: the leader speaks live)"),
    "greetings.media_not_ready": _m("慰问视频 {id} 不存在、不在您的管辖范围内或尚未处理完成，不能用于慰问",
                                    "Greeting video {id} does not exist, is not in your scope or is not ready: "
                                    "it cannot be played"),
    "greetings.late_join": _m("迟到值班室的观看方式应为 live（从当前进度观看）或 start（从头观看）",
                              "late_join must be live (late rooms join where it is) or start (late rooms see it "
                              "from the beginning)"),
}

CATALOGUE.update(MESSAGES)
