"""Every message a user can see from the server, in Simplified Chinese (the default) and English.

Errors carry a catalogue key and named parameters (a :class:`Msg`), never finished text; the
edge that answers (``web/auth.py`` for HTTP, the signalling socket) renders them in the
language of the request: :func:`pick` normalises a choice, :func:`from_accept_language` reads
the header. Parameters may themselves be :class:`Msg` (a column label inside a row's error) and
are rendered in the same language. User text given as a parameter is inserted as it is; it only
ever reaches JSON, which the pages show with ``textContent``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

ZH = "zh-CN"
EN = "en"
LANGUAGES = (ZH, EN)
DEFAULT_LANGUAGE = ZH


def _m(zh: str, en: str) -> dict[str, str]:
    return {ZH: zh, EN: en}


CATALOGUE: dict[str, dict[str, str]] = {
    # -- generic -------------------------------------------------------------------------
    "error.internal": _m("服务器内部错误，请稍后重试", "Internal server error; please try again later"),
    "error.signalling_internal": _m("服务器内部错误（{kind}）", "internal error ({kind})"),
    # -- the HTTP edge (web/) --------------------------------------------------------------
    "web.sign_in_first": _m("请先登录", "Please sign in first"),
    "web.csrf": _m("缺少或错误的 X-CSRF-Token 请求头，请刷新页面后重试",
                   "Missing or wrong X-CSRF-Token header; reload the page and try again"),
    "web.query_not_integer": _m("参数 {name} 应为整数", "Parameter {name} must be an integer"),
    "web.path_not_found": _m("地址中的 {name} 不是有效的编号，没有这个对象",
                             "{name} in the address is not a valid id: no such thing"),
    "web.no_such_action": _m("没有名为“{action}”的点名操作", "No roll-call action \"{action}\""),
    "web.json_content_type": _m("请求体必须是 JSON（Content-Type: application/json）",
                                "The body must be JSON (Content-Type: application/json)"),
    "web.json_invalid": _m("请求体不是有效的 JSON", "The body is not valid JSON"),
    "web.json_not_object": _m("请求体必须是 JSON 对象", "The body must be a JSON object"),
    "web.json_too_deep": _m("请求体的 JSON 嵌套超过 {depth} 层",
                            "The body's JSON is nested deeper than {depth} levels"),
    "web.json_bad_characters": _m("请求体含有不允许的控制字符或无效字符",
                                  "The body contains control characters or invalid characters"),
    "web.json_number_range": _m("请求体中的数值超出允许范围", "A number in the body is out of range"),
    "web.json_integer_range": _m("请求体中的整数超出允许范围", "An integer in the body is out of range"),
    "web.body_too_large": _m("请求体过大", "The request body is too large"),
    "web.body_too_slow": _m("请求体发送过慢", "The request body arrived too slowly"),
    "web.file_too_large": _m("文件过大（上限 {mb} MB）", "The file is too large (at most {mb} MB)"),
    "web.sign_in_fields": _m("请输入用户名和密码", "Enter a username and a password"),
    "web.token_required": _m("缺少终端凭证", "The device token is missing"),
    "web.too_many_sign_ins": _m("此地址登录失败次数过多，请 15 分钟后再试",
                                "Too many failed sign-ins from this address; try again in 15 minutes"),
    "web.sign_ins_in_flight": _m("此地址同时进行的登录过多，请稍后再试",
                                 "Too many sign-ins in progress from this address; try again in a moment"),
    "web.account_sign_ins_in_flight": _m("该用户名同时进行的登录过多，请稍后再试",
                                         "Too many sign-ins in progress for this username; try again in a moment"),
    "documents.busy": _m("正在生成或读取的文件过多，请稍后再试",
                         "Too many documents are being generated or read; try again in a moment"),
    "web.join_not_allowed": _m("不允许从此处加入视频会议", "You may not join video meetings from here"),
    "web.too_many_connections": _m("该账号（或终端）同时打开的连接过多，请关闭其他窗口后重试",
                                   "Too many connections open for this account (or console); "
                                   "close other windows and try again"),
    "web.invite_free_form_only": _m("只能邀请进入自由会议室", "Invitations are only to free-form meeting rooms"),
    "web.invite_forbidden": _m("没有邀请他人进入会议室的权限", "You may not invite others into meeting rooms"),
    "web.invite_whom": _m("请给出 account_id 或 duty_room_id 之一（整数）",
                          "Give exactly one of account_id or duty_room_id (an integer)"),
    "web.meeting_not_found": _m("没有名为“{name}”的会议室，或不在您的管辖范围内",
                                "No meeting room \"{name}\" in your scope"),
    "web.answer_join_first": _m("请先进入点名会议室", "Join the roll-call's room first"),
    "web.answer_console_only": _m("只有值班室终端可以应答点名", "Only a duty room's console can answer a roll-call"),
    "web.answer_roll_call_id": _m("roll_call_id 应为整数", "'roll_call_id' must be an integer"),
    "web.answer_own_room": _m("请在本次点名的会议室内应答", "Answer from the roll-call's own room"),
    # -- input fields (directory/fields.py and others) -------------------------------------
    "field.required": _m("请填写 {name}", "{name} is required"),
    "field.text_length": _m("{name} 应为 1 至 {max} 个字符的文本", "{name} must be text of 1 to {max} characters"),
    "field.control_characters": _m("{name} 含有不允许的控制字符或无效字符",
                                   "{name} contains control characters or invalid characters"),
    "field.integer": _m("{name} 应为整数", "{name} must be an integer"),
    "field.phone": _m("{name} 不是有效的电话号码（只能含数字、+、-、括号和空格）",
                      "{name} is not a phone number (digits, +, -, brackets and spaces)"),
    "field.boolean": _m("{name} 应为 true 或 false", "{name} must be true or false"),
    "field.date": _m("{name} 应为 YYYY-MM-DD 格式的日期", "{name} must be a date YYYY-MM-DD"),
    # -- directory ---------------------------------------------------------------------------
    "directory.bad_credentials": _m("用户名或密码错误", "Wrong username or password"),
    "directory.account_locked": _m("连续登录失败次数过多，账号已暂时锁定，请稍后再试",
                                   "Too many failed sign-ins: the account is locked for a while; try again later"),
    "directory.device_invalid": _m("终端凭证无效或已被吊销", "The device credential is invalid or revoked"),
    "directory.device_revoked": _m("终端凭证已被吊销", "The device credential has been revoked"),
    "directory.session_expired": _m("登录已过期，请重新登录", "Your session has expired; please sign in again"),
    "directory.account_inactive": _m("账号已停用", "This account is deactivated"),
    "directory.unit_inactive": _m("账号所属单位已停用", "This account's unit is deactivated"),
    "directory.room_inactive": _m("该值班室或其单位已停用", "This duty room or its unit is deactivated"),
    "directory.busy": _m("登录请求过多，请稍后重试", "Too many sign-ins at once; try again shortly"),
    "directory.not_allowed": _m("您没有此操作的权限（{permission}）", "Not allowed: {permission}"),
    "directory.username_format": _m("用户名只能含字母、数字和 . - _ @，长度 2 至 64",
                                    "A username may hold letters, digits, '.', '-', '_', '@' (2 to 64)"),
    "directory.password_short": _m("密码至少 {min} 个字符", "The password must be at least {min} characters"),
    "directory.unknown_role": _m("未知的角色", "Unknown role"),
    "directory.username_taken": _m("用户名“{username}”已被使用", "The username \"{username}\" is taken"),
    "directory.account_not_found": _m("没有编号为 {id} 的账号，或不在您的管辖范围内",
                                      "No account {id} in your scope"),
    "directory.cannot_deactivate_self": _m("不能停用您自己的账号", "You cannot deactivate yourself"),
    "directory.credential_not_found": _m("没有编号为 {id} 的终端凭证，或不在您的管辖范围内",
                                         "No device credential {id} in your scope"),
    "directory.unit_code_format": _m("单位编码只能含字母、数字和 . - _，长度 1 至 32",
                                     "A unit code may hold letters, digits, '.', '-', '_' (1 to 32)"),
    "directory.unit_kind": _m("单位类型应为以下之一：{kinds}", "The unit kind must be one of {kinds}"),
    "directory.unit_code_taken": _m("单位编码“{code}”已被使用", "The unit code \"{code}\" is taken"),
    "directory.cannot_move_root": _m("不能移动您管辖范围的根单位", "The root of your scope cannot be moved"),
    "directory.move_cycle": _m("单位不能移动到自身或其下级单位之下",
                               "A unit cannot move under itself or its own descendants"),
    "directory.cannot_deactivate_root": _m("不能停用您管辖范围的根单位",
                                           "You cannot deactivate the root of your own scope"),
    "directory.unit_not_found": _m("没有编号为 {id} 的单位，或不在您的管辖范围内", "No unit {id} in your scope"),
    "directory.room_not_found": _m("没有编号为 {id} 的值班室，或不在您的管辖范围内",
                                   "No duty room {id} in your scope"),
    # -- the roster (directory/roster.py) -----------------------------------------------------
    "roster.date_range": _m("结束日期应不早于开始日期，且跨度不超过 {days} 天",
                            "The end must be on or after the start and within {days} days"),
    "roster.period": _m("期间名称应为简短文本，例如“2027春节”", "The period must be a short name such as 2027春节"),
    "roster.officers": _m("请至少填写一名值班员（姓名和电话）", "List at least one officer (name and phone)"),
    "roster.officer_phone": _m("值班员电话不是有效的电话号码", "An officer's phone is not a phone number"),
    "roster.leader": _m("带班领导姓名或电话格式不正确", "The shift leader's name or phone is malformed"),
    "roster.file_too_large": _m("文件过大（上限 {mb} MB）", "The file is too large (at most {mb} MB)"),
    "roster.has_errors": _m("值班表有 {total} 处错误，未保存任何内容",
                            "The roster has {total} errors; nothing was saved"),
    "roster.empty": _m("值班表中没有任何值班记录，未保存", "The roster holds no shifts; nothing was saved"),
    "roster.empty_row": _m("值班表中没有任何值班记录", "The roster holds no shifts"),
    "roster.rooms_changed": _m("值班室在校验期间发生变化，未保存，请重新上传",
                               "Duty rooms changed while the file was checked; nothing was saved, upload again"),
    "roster.not_xlsx": _m("无法读取文件：请上传由模板填写的 .xlsx 文件",
                          "Cannot read the file: upload an .xlsx file filled in from the template"),
    "roster.not_xlsx_detail": _m("不是有效的 XLSX 文件（{detail}）", "Not a valid XLSX file ({detail})"),
    "roster.unzipped_too_large": _m("文件解压后过大，不是由模板填写的值班表",
                                    "The file unpacks too large to be a roster filled in from the template"),
    "roster.header": _m("表头与模板不一致，请使用下载的模板",
                        "The header row differs from the template; use the downloaded template"),
    "roster.header_expected": _m("表头应为：{columns}", "The header should read: {columns}"),
    "roster.too_many_rows": _m("值班表超过 {max} 行，未保存：请只填写下载的模板中的行",
                               "The roster has more than {max} rows; nothing was saved: "
                               "fill in only the template's rows"),
    "roster.row": _m("第{row}行：{problem}", "Row {row}: {problem}"),
    "roster.row_limit": _m("超过 {max} 行的上限", "beyond the limit of {max} rows"),
    "roster.more_errors": _m("另有 {rest} 处错误未列出，请先改正以上错误",
                             "{rest} more errors not listed; correct those above first"),
    "roster.row_room": _m("值班室编号“{value}”不存在或不在您的管辖范围内",
                          "duty room id \"{value}\" does not exist or is not in your scope"),
    "roster.row_unit": _m("单位编码“{value}”与值班室所属单位（{code}）不符",
                          "unit code \"{value}\" does not match the duty room's unit ({code})"),
    "roster.row_date": _m("日期“{value}”无效，应为 YYYY-MM-DD", "date \"{value}\" is not valid; use YYYY-MM-DD"),
    "roster.row_leader": _m("请填写带班领导", "fill in the shift leader"),
    "roster.row_control": _m("{column}含有不允许的控制字符或无效字符",
                             "{column} contains control characters or invalid characters"),
    "roster.row_phone": _m("{column}“{value}”不是有效的电话号码", "{column} \"{value}\" is not a phone number"),
    "roster.row_officer": _m("至少填写一名值班员", "fill in at least one officer"),
    "roster.row_officer_phone": _m("请填写{column}", "fill in {column}"),
    "roster.row_duplicate": _m("与第{other}行重复（同一值班室同一日期）",
                               "repeats row {other} (the same duty room and date)"),
    "roster.col.leader": _m("带班领导", "shift leader"),
    "roster.col.leader_phone": _m("带班领导电话", "shift leader's phone"),
    "roster.col.officer1": _m("值班员1", "officer 1"),
    "roster.col.officer1_phone": _m("值班员1电话", "officer 1's phone"),
    "roster.col.officer2": _m("值班员2", "officer 2"),
    "roster.col.officer2_phone": _m("值班员2电话", "officer 2's phone"),
    # -- roll-calls ---------------------------------------------------------------------------
    "rollcall.title": _m("点名标题应为不超过 {max} 个字符的文本，且不含控制字符",
                         "The title must be text of at most {max} characters without control characters"),
    "rollcall.room_ids": _m("room_ids 应为非空的值班室编号列表", "room_ids must be a non-empty list of duty room ids"),
    "rollcall.window": _m("应答时限和迟到阈值应为 1 至 {max} 秒",
                          "The answer window and the late threshold must be 1 to {max} seconds"),
    "rollcall.spot_check_one_room": _m("抽查只能点一个值班室", "A spot-check calls exactly one room"),
    "rollcall.room_id": _m("room_id 应为整数", "room_id must be an integer"),
    "rollcall.excuse_fields": _m("请假需要 room_id 和请假原因", "An excuse needs room_id and a reason"),
    "rollcall.excuse_control": _m("请假原因含有不允许的控制字符", "The reason contains control characters"),
    "rollcall.dwell": _m("轮询停留时间应为 {min} 至 {max} 秒", "The polling dwell must be {min} to {max} seconds"),
    "rollcall.no_action": _m("没有名为“{action}”的点名操作", "No roll-call action \"{action}\""),
    "rollcall.officer_required": _m("请选择或填写应答人", "Choose or enter who is answering"),
    "rollcall.officer_length": _m("应答人姓名不能超过 {max} 个字符", "The name may be at most {max} characters"),
    "rollcall.officer_control": _m("应答人姓名含有不允许的控制字符或无效字符",
                                   "The name contains control characters or invalid characters"),
    "rollcall.rooms_not_in_scope": _m("值班室 {ids} 不在您的管辖范围内", "Duty rooms {ids} are not in your scope"),
    "rollcall.not_found": _m("没有编号为 {id} 的点名，或不在您的管辖范围内", "No roll-call {id} in your scope"),
    "rollcall.console_no_board": _m("值班室终端不能查看点名看板", "A duty room's console cannot view the board"),
    "rollcall.hosts_only": _m("只有主持人和管理员可以组织点名", "Only hosts and administrators run roll-calls"),
    "rollcall.console_no_results": _m("值班台不能查看点名结果和统计",
                                      "A duty room's console cannot view results and statistics"),
    "rollcall.notice_not_found": _m("没有编号为 {id} 的督办通知，或不在您的管辖范围内",
                                    "No notice {id} in your scope"),
    "rollcall.response_text": _m("回复应为 1 至 4000 个字符的文本",
                                 "The response must be text of 1 to 4000 characters"),
    "rollcall.respond_own_unit": _m("只有被督办单位本级的人员可以回复",
                                    "Only the notified unit's own people may respond"),
    "rollcall.notice_closed": _m("该督办通知已办结", "This notice is closed"),
    "rollcall.close_hosts_only": _m("只有点名方的主持人可以办结，被督办单位不能办结自己的通知",
                                    "Only a host of the roll-call's side closes a notice; "
                                    "the notified unit cannot close its own"),
    "rollcall.close_after_response": _m("被督办单位回复后才能办结", "A notice is closed after the unit has responded"),
    "rollcall.month": _m("月份应为 YYYY-MM", "The month must be YYYY-MM"),
    "rollcall.month_range": _m("月份超出范围（2000 至 2200 年）", "The month is out of range (years 2000 to 2200)"),
    # The roll-call state machine's refusals (IllegalEvent, 409).
    "machine.room_not_in_roll_call": _m("值班室 {room} 不在本次点名中", "Room {room} is not in this roll-call"),
    "machine.still_calling": _m("值班室 {room} 仍在点名中：请等待应答，或跳过、准假",
                                "Room {room} is still being called; wait for its answer, skip or excuse it"),
    "machine.all_called": _m("所有值班室都已点过", "Every room has been called"),
    "machine.already_calling": _m("值班室 {room} 已在点名中", "Room {room} is already being called"),
    "machine.not_calling": _m("值班室 {room} 未在点名中", "Room {room} is not being called"),
    "machine.nobody_calling": _m("当前没有正在点名的值班室", "No room is being called"),
    "machine.excuse_reason": _m("请假需要填写原因", "An excuse needs a reason"),
    "machine.dwell_positive": _m("轮询停留时间应大于 0", "The dwell must be positive"),
    "machine.already_polling": _m("已在自动轮询", "Already polling"),
    "machine.not_polling": _m("未在自动轮询", "Not polling"),
    "machine.still_calling_short": _m("值班室 {room} 仍在点名中", "Room {room} is still being called"),
    "machine.no_rooms": _m("点名至少需要一个值班室", "A roll-call needs at least one room"),
    "machine.room_twice": _m("同一值班室出现了两次", "A room appears twice"),
    "machine.late_threshold": _m("迟到阈值应大于 0 且不超过应答时限",
                                 "The late threshold must be positive and within the answer window"),
    # The phase and the refused move as people say them (rollcall/machine.py passes them as Msgs).
    "machine.wrong_phase": _m("本次点名{phase}，不能{event}", "Cannot {event} a roll-call that is {phase}"),
    "machine.phase.scheduled": _m("尚未开始", "not started"),
    "machine.phase.running": _m("正在进行", "in progress"),
    "machine.phase.finished": _m("已结束", "finished"),
    "machine.phase.cancelled": _m("已取消", "cancelled"),
    "machine.phase.interrupted": _m("已中断", "interrupted"),
    "machine.event.Start": _m("开始", "start"),
    "machine.event.Call": _m("点名", "call a room in"),
    "machine.event.Answer": _m("应答", "answer"),
    "machine.event.WindowExpired": _m("结束应答时限", "close the answer window of"),
    "machine.event.Skip": _m("跳过值班室", "skip a room in"),
    "machine.event.Excuse": _m("准假", "excuse a room in"),
    "machine.event.StartPolling": _m("开始自动轮询", "start polling"),
    "machine.event.StopPolling": _m("停止自动轮询", "stop polling"),
    "machine.event.Finish": _m("结束", "finish"),
    "machine.event.Cancel": _m("取消", "cancel"),
    "machine.event.Interrupt": _m("中断", "interrupt"),
    "machine.polling_stopped": _m("已停止轮询，或有值班室正在点名", "Polling was stopped, or a room is being called"),
    # -- plans (rollcall/plans.py) --------------------------------------------------------------
    "plans.when_format": _m("{name} 应为带时区偏移的 ISO 8601 时间，例如 2027-02-10T09:00:00+08:00",
                            "{name} must be an ISO 8601 date-time with its UTC offset, "
                            "e.g. 2027-02-10T09:00:00+08:00"),
    "plans.when_invalid": _m("{name} 不是有效的 ISO 8601 时间：“{value}”",
                             "{name} is not an ISO 8601 date-time: \"{value}\""),
    "plans.when_range": _m("{name} 应在 2000 年至 2100 年之间", "{name} must lie between 2000 and 2100"),
    "plans.rule_help": _m("rrule 应为一条 RFC 5545 RRULE，例如 FREQ=WEEKLY;BYDAY=MO",
                          "rrule must be a single RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO"),
    "plans.rule_invalid": _m("rrule 不是有效的 RFC 5545 规则：{detail}",
                             "rrule is not a valid RFC 5545 rule: {detail}"),
    "plans.sub_hourly": _m("点名计划的频率不能高于每小时一次（相邻两次点名至少间隔 1 小时）",
                           "A plan may fire at most hourly (at least 1 hour between roll-calls)"),
    "plans.rule_parts": _m("rrule 使用了该频率不支持的部分：{parts}",
                           "rrule uses parts not supported for this frequency: {parts}"),
    "plans.rule_bounds": _m("rrule 的 INTERVAL 不能超过 1000，COUNT 不能超过 {max}",
                            "rrule INTERVAL must be at most 1000 and COUNT at most {max}"),
    "plans.rule_never": _m("rrule 不会产生任何点名时间", "rrule yields no roll-call times"),
    "plans.title": _m("请填写标题（不超过 128 个字符，不含控制字符）",
                      "The title is required (at most 128 characters, no control characters)"),
    "plans.dates": _m("dates 应为不超过 {max} 个时间的列表", "dates must be a list of at most {max} date-times"),
    "plans.target_kinds": _m("target_kinds 应为单位类型的列表", "target_kinds must list unit kinds"),
    "plans.window": _m("answer_window（不超过 600 秒）和 late_after（不超过 answer_window）应为秒数",
                       "answer_window (at most 600 s) and late_after (at most answer_window) are seconds"),
    "plans.custom_order": _m("custom_order 应为值班室编号的列表", "custom_order must list duty room ids"),
    "plans.focus_points": _m("focus_points 应为不超过 2000 个字符的文本", "focus_points must be text (at most 2000)"),
    "plans.schedule": _m("请选择每周或每月，并填写时间（时:分）", "Choose weekly or monthly and a time (HH:MM)"),
    "plans.schedule_weekdays": _m("请至少选择一个星期几", "Choose at least one weekday"),
    "plans.schedule_monthday": _m("每月的日期应为 1 至 31", "The day of the month must be 1 to 31"),
    "groups.name": _m("分组名称应为不超过 {max} 个字符的文本，且不含控制字符",
                      "The group name is required (at most {max} characters, no control characters)"),
    "groups.room_ids": _m("分组应包含 1 至 {max} 个值班室", "A group holds 1 to {max} duty rooms"),
    "groups.too_many": _m("最多保存 {max} 个分组", "At most {max} groups can be saved"),
    "groups.not_found": _m("没有编号为 {id} 的分组，或不是您保存的", "No group {id} of yours"),
    "groups.name_taken": _m("已有名为“{name}”的分组（刚刚同时保存），请刷新后再试",
                            "A group named \"{name}\" already exists (saved at the same moment): reload and try again"),
    "plans.unknown_fields": _m("未知的字段：{fields}", "Unknown fields: {fields}"),
    "plans.no_target": _m("目标单位不存在或不在您的管辖范围内", "No target unit in your scope"),
    "plans.not_found": _m("没有编号为 {id} 的点名计划，或不在您的管辖范围内", "No plan {id} in your scope"),
    "plans.manage": _m("只有制定该计划的主持人或其上级单位的主持人可以修改、暂停或删除它",
                       "Only the plan's own host or a host at or above that host's unit may edit, "
                       "pause or delete it"),
    # -- the conference's signalling protocol ------------------------------------------------------
    "conference.text_field": _m("“{key}”应为非空文本", "'{key}' must be a non-empty string"),
    "conference.text_length": _m("“{key}”不能超过 {max} 个可打印字符",
                                 "'{key}' must be at most {max} printable characters"),
    "conference.message_too_large": _m("消息超过 {max} 字节", "Message larger than {max} bytes"),
    "conference.malformed_json": _m("消息不是有效的 JSON：{detail}", "Malformed JSON: {detail}"),
    "conference.not_object": _m("消息必须是 JSON 对象", "A message must be a JSON object"),
    "conference.bad_id": _m("“id”应为不超过 64 个字符的文本或整数",
                            "'id' must be a string or integer of at most 64 characters"),
    "conference.unknown_type": _m("未知的消息类型“{type}”", "Unknown message type \"{type}\""),
    "conference.binary": _m("协议不支持二进制消息", "Binary messages are not part of the protocol"),
    "conference.join_first": _m("请先进入会议室", "Join a room first"),
    "conference.already_in_room": _m("已在会议室“{room}”中，请先离开", "Already in room \"{room}\"; leave first"),
    "conference.room_name": _m("“room”只能含字母、数字和 . - _",
                               "'room' may hold letters, digits, '.', '-' and '_' only"),
    "conference.room_not_open": _m("没有对您开放的会议室“{room}”", "No room \"{room}\" open to you"),
    "conference.label": _m("“label”只能含字母、数字和 . - _",
                           "'label' may hold letters, digits, '.', '-' and '_' only"),
    "conference.video_codec": _m("“video_codec”应为以下之一：{codecs}", "'video_codec' must be one of {codecs}"),
    "conference.no_own_publication": _m("您没有发布“{id}”", "You have no publication \"{id}\""),
    "conference.no_own_subscription": _m("您没有订阅“{id}”", "You have no subscription \"{id}\""),
    "conference.no_publication_in_room": _m("会议室“{room}”中没有发布“{id}”",
                                            "No publication \"{id}\" in room \"{room}\""),
    "conference.room_closed": _m("会议室“{room}”已关闭", "Room \"{room}\" is closed"),
    "conference.room_full": _m("会议室“{room}”已满", "Room \"{room}\" is full"),
    "conference.participant_left": _m("参会方已离开", "The participant has left"),
    "conference.too_many_publications": _m("发布数量过多", "Too many publications"),
    "conference.left_while_publishing": _m("参会方在发布过程中离开", "The participant left while publishing"),
    "conference.own_publication": _m("不能订阅自己的发布", "You cannot subscribe to your own publication"),
    "conference.too_many_subscriptions": _m("订阅数量过多", "Too many subscriptions"),
    "conference.publication_closed": _m("发布 {id} 在订阅过程中已关闭", "Publication {id} closed while subscribing"),
    "conference.worker_gone": _m("媒体工作进程已退出，请重新订阅", "The media worker has stopped; subscribe again"),
    "conference.left_while_subscribing": _m("参会方在订阅过程中离开", "The participant left while subscribing"),
    "conference.publication_not_here": _m("该发布不在本会议室中", "That publication is not in this room"),
    "sdp.empty": _m("sdp 应为非空文本", "sdp must be a non-empty string"),
    "sdp.too_large": _m("sdp 超过 {max} 字节", "sdp is larger than {max} bytes"),
    "sdp.version": _m("sdp 应以 v=0 开头", "sdp must start with v=0"),
    "sdp.malformed": _m("sdp 格式错误：{detail}", "Malformed sdp: {detail}"),
    "sdp.no_media": _m("sdp 中没有媒体段", "sdp has no media section"),
    "sdp.media_kind": _m("不支持的媒体类型“{kind}”", "Media kind \"{kind}\" is not supported"),
    "sdp.direction": _m("{purpose} 需要方向为 {wanted} 的 {kind}，收到的是 {got}",
                        "{purpose} needs {wanted} {kind}, got {got}"),
    "sdp.ice": _m("{kind} 段缺少 ice-ufrag/ice-pwd", "{kind} section lacks ice-ufrag/ice-pwd"),
    "sdp.fingerprint": _m("{kind} 段缺少 DTLS 指纹", "{kind} section lacks a DTLS fingerprint"),
    "sdp.codecs": _m("{kind} 提供的编解码器为 {offered}；服务器转发 {forwarded}",
                     "{kind} offers {offered}; the server forwards {forwarded}"),
    "sdp.duplicate_kinds": _m("每个 offer 至多一个音频段和一个视频段",
                              "At most one audio and one video section per offer"),
    "sdp.codec_unavailable": _m("服务器不能转发 {kind} 编解码器“{codec}”",
                                "The server cannot forward {kind} codec \"{codec}\""),
    "sdp.no_common_codec": _m("没有共同的编解码器：{detail}", "No common codec: {detail}"),
    "sdp.negotiation": _m("无法协商：{detail}", "Cannot negotiate: {detail}"),
    "sdp.missing_kinds": _m("发布 {id} 没有 {missing}（它有 {has}）",
                            "Publication {id} has no {missing} (it has {has})"),
    "sdp.nothing": _m("无", "nothing"),
}


class Msg:
    """A catalogue key and its named parameters: a message not yet put into words."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params

    def render(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return render(self.key, self.params, lang)

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)


def render(key: str, params: Mapping[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """The message ``key`` in ``lang`` (Chinese for an unknown language) with ``params`` filled in.

    An unknown key renders as the key itself rather than failing an answer that is already an
    error (``tests/test_messages.py`` checks that every key used in the code exists)."""
    texts = CATALOGUE.get(key)
    if texts is None:
        return key
    template = texts.get(lang) or texts[DEFAULT_LANGUAGE]
    values = {name: value.render(lang) if isinstance(value, Msg) else value for name, value in params.items()}
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError):
        return template


def localise(value: Any, lang: str) -> Any:
    """``value`` with every :class:`Msg` inside lists and dicts rendered in ``lang``."""
    if isinstance(value, Msg):
        return value.render(lang)
    if isinstance(value, dict):
        return {k: localise(v, lang) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [localise(v, lang) for v in value]
    return value


def parameters(template: str) -> set[str]:
    """The named parameters of a catalogue text."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def pick(choice: str | None) -> str | None:
    """A supported language for ``choice`` ("en", "en-GB", "zh", "zh-Hans-CN"...), or None."""
    if not choice:
        return None
    choice = choice.strip().lower()
    if choice.startswith("en"):
        return EN
    if choice.startswith("zh"):
        return ZH
    return None


def from_accept_language(header: str | None) -> str | None:
    """The supported language an ``Accept-Language`` header prefers most, or None."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:32]):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        rest = rest.strip()
        if rest.startswith("q="):
            try:
                quality = float(rest[2:])
            except ValueError:
                continue
        lang = pick(tag)
        if lang is not None and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None
