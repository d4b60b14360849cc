"""The media package's user-visible messages (footage, ingest, the archive), registered into
the one catalogue (``dutycall/messages.py``) when the package is imported."""

from __future__ import annotations

from ..messages import CATALOGUE, EN, ZH


def _m(zh: str, en: str) -> dict[str, str]:
    return {ZH: zh, EN: en}


MESSAGES: dict[str, dict[str, str]] = {
    "footage.no_space": _m("录像磁盘剩余空间不足（剩余 {free_mb} MB，至少需要 {min_mb} MB），未开始录像",
                           "The recordings disk is low on space ({free_mb} MB free, {min_mb} MB needed): "
                           "recording not started"),
    "footage.no_token": _m("缺少推流令牌（Authorization: Bearer …）",
                           "An ingest token is required (Authorization: Bearer …)"),
    "footage.bad_token": _m("推流令牌无效、已过期或已撤销", "The ingest token is wrong, expired or revoked"),
    "footage.sdp_type": _m("请求体应为 SDP 提议（Content-Type: application/sdp）",
                           "The body must be an SDP offer (Content-Type: application/sdp)"),
    "footage.sdp_encoding": _m("SDP 提议应为 UTF-8 文本", "The SDP offer must be UTF-8 text"),
    "footage.bad_offer": _m("SDP 提议无效：{reason}", "The SDP offer is not valid: {reason}"),
    "footage.no_trickle": _m("本服务器不支持 ICE trickle 和 ICE 重启（PATCH）；请在提议中包含全部候选地址",
                             "This server does not support ICE trickle or restarts (PATCH); put every "
                             "candidate in the offer"),
    "footage.session_not_found": _m("没有这个推流会话（可能已结束）",
                                    "There is no such ingest session (it may have ended)"),
    "footage.consoles_no": _m("值班室终端不能管理事件影像", "A duty room's console cannot manage incident footage"),
    "footage.no_ingest_right": _m("您的角色不能为事件签发或撤销推流令牌",
                                  "Your role cannot issue or revoke ingest tokens for incidents"),
    "footage.incident_not_found": _m("没有编号为 {id} 的事件", "There is no incident {id}"),
    "footage.incident_closed": _m("事件已结束或已合并，不能再接收影像",
                                  "The incident is closed or merged: it takes no more footage"),
    "footage.token_not_found": _m("没有编号为 {id} 的推流令牌", "There is no ingest token {id}"),
    "footage.token_label": _m("名称应为 1 至 {max} 个字符，且不含控制字符",
                              "The label must be 1 to {max} characters without control characters"),
    "footage.token_minutes": _m("有效期应为 {low} 至 {high} 分钟的整数",
                                "The validity must be {low} to {high} whole minutes"),
    "footage.too_many_sessions": _m("同时推流的会话已达上限（{max} 个）",
                                    "Too many ingest sessions at once (at most {max})"),
    "footage.ingest_failed": _m("推流未能开始：{reason}", "The stream could not start: {reason}"),
    # live relay, playback, access audit (relay.py, playback.py, audit.py)
    "footage.no_relay_right": _m("您的角色不能转发事件影像", "Your role cannot relay incident footage"),
    "footage.no_audit_right": _m("您的角色不能查看影像访问记录", "Your role cannot read the footage access record"),
    "footage.relay_source": _m("请选择要转发的影像源", "Choose the footage source to relay"),
    "footage.relay_targets": _m("请选择至少一个值班室或领导（每类最多 {max} 个）",
                                "Choose at least one duty room or leader (at most {max} of each)"),
    "footage.too_many_relays": _m("同时转发的影像已达上限（{max} 路）", "Too many relays at once (at most {max})"),
    "footage.source_not_found": _m("没有编号为 {id} 的影像源", "There is no footage source {id}"),
    "footage.source_not_live": _m("该影像源已不在直播，不能转发",
                                  "That source is no longer live: it cannot be relayed"),
    "footage.relay_room_not_found": _m("没有编号为 {id} 的值班室（或不在您的范围内）",
                                       "There is no duty room {id} in your scope"),
    "footage.relay_account_not_found": _m("没有编号为 {id} 的领导账号（或不在您的范围内）",
                                          "There is no leader account {id} in your scope"),
    "footage.relay_not_found": _m("没有编号为 {id} 的影像转发（可能已停止）",
                                  "There is no footage relay {id} (it may have stopped)"),
    "footage.segment_not_found": _m("没有编号为 {id} 的录像片段", "There is no footage segment {id}"),
    "footage.range": _m("时间段应为开始早于结束，且不超过 {hours} 小时",
                        "The range must start before it ends and span at most {hours} hours"),
    "footage.range_empty": _m("该时间段内没有录像", "There is no footage in that range"),
    # WHEP viewing (whep.py)
    "footage.no_watch_right": _m("您的角色不能观看事件影像", "Your role cannot watch incident footage"),
    "footage.whep_not_live": _m("影像源 {id} 当前不在直播", "Footage source {id} is not live"),
    "footage.whep_session_not_found": _m("没有这个观看会话（可能已结束）",
                                         "There is no such viewing session (it may have ended)"),
    "footage.too_many_viewings": _m("同时观看的会话已达上限（每个账号 {max} 个）",
                                    "Too many viewing sessions at once (at most {max} an account)"),
    "footage.instant": _m("时间应为带时区的 ISO 8601 格式，如 2026-12-03T10:00:00+08:00",
                          "Times must be ISO 8601 with an offset, e.g. 2026-12-03T10:00:00+08:00"),
    # The wall's thumbnails (wall.py, web/wall.py)
    "wall.consoles_no": _m("值班室终端不能查看多画面", "A duty room's console cannot open the wall"),
    "wall.viewer": _m("画面墙标识无效（1–64 个字母、数字、- 或 _）",
                      "The wall's viewer id is not valid (1-64 letters, digits, - or _)"),
    "wall.rooms": _m("房间应为值班室编号的列表，最多 {max} 个",
                     "The rooms must be a list of at most {max} duty room ids"),
    "wall.room_not_found": _m("没有编号为 {id} 的值班室（或不在您的范围内）",
                              "There is no duty room {id} in your scope"),
    "wall.no_picture": _m("值班室 {id} 暂无画面", "There is no picture of duty room {id} yet"),
    "wall.too_many_walls": _m("您已同时打开 {max} 个多画面，请关闭其他页面后再试",
                              "You already have {max} walls open: close one and try again"),
    "wall.server_busy": _m("服务器上同时打开的多画面已达上限（{max} 个），请稍后再试",
                           "Too many walls are open on the server (at most {max}): try again later"),
}

CATALOGUE.update(MESSAGES)
