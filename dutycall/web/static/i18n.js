// Interface text. Simplified Chinese by default; English on request (?lang=en or the button).
"use strict";
const MESSAGES = {
  "zh-CN": {
    title: "值班视频", room: "房间", name: "名称", join: "加入", leave: "离开",
    switch_lang: "English", me: "本机",
    status_idle: "未连接", status_connecting: "正在连接…", status_connected: "已连接",
    status_reconnecting: "连接中断，正在重连…",
    state_new: "等待中", state_connecting: "连接中", state_connected: "已连接",
    state_disconnected: "信号中断", state_failed: "连接失败", state_closed: "已关闭",
    err_media: "无法打开摄像头或麦克风：", err_server: "服务器错误：",
    username: "用户名", password: "密码", sign_in: "登录", sign_out: "退出登录", signed_in_as: "当前用户：",
    err_sign_in: "登录失败：", err_device: "本机的终端凭证无效或已被吊销，请联系管理员。",
    err_session_ended: "登录已失效（已退出、密码已重置或权限已变更），请重新登录。",
    dir_title: "单位与值班表", to_console: "视频值班台", contacts: "通讯录", search_hint: "名称、拼音首字母或电话",
    units: "单位", code: "编码", unit_name: "名称", kind: "类型", duty_rooms: "值班室", actions: "操作",
    new_unit: "新建单位", new_room: "新建值班室", room_name: "值班室名称", phone: "电话", create: "创建",
    rename: "改名", move: "移动", deactivate: "停用", new_name: "新名称：", new_parent: "移动到（单位编码）：",
    kind_city: "市", kind_district: "区", kind_street: "街道", kind_agency: "部门", kind_enterprise: "企业",
    roster: "节假日值班表", download_template: "下载模板", download_handbook: "下载值班手册", upload: "上传",
    status: "报送情况", submitted: "已报送", not_submitted: "未报送", saved: "已保存行数：",
    type_unit: "单位", type_duty_room: "值班室", type_person: "人员",
    console_link: "终端登录链接", issue_link: "生成链接", accounts: "账号", display_name: "姓名", role: "角色",
    new_account: "新建账号", disable: "停用", role_admin: "管理员", role_host: "主持人", role_duty_officer: "值班员",
    role_leader: "领导", role_viewer: "查看员", link_once: "请在该值班室电脑上打开一次（只显示这一次）：",
    ring_title: "视频点名：请应答", answer: "到", answered: "已应答", floor: "发言中",
    ring_who: "请点击应答人：", ring_officer: "值班员", ring_leader: "带班领导", ring_none: "今日值班表无本室人员",
    ring_other: "其他人员", ring_other_name: "姓名", err_officer: "请填写 64 个字符以内的姓名，不含控制字符",
    rc_on_roster: "在值班表中", ev_lost: "证据丢失（服务器中断）",
    rc_title: "视频点名", rc_new: "发起点名", rc_window: "应答时限（秒）", rc_late: "迟到阈值（秒）",
    rc_board: "点名看板", rc_start: "开始", rc_next: "点下一个", rc_skip: "跳过", rc_poll: "自动轮询",
    rc_stop_poll: "停止轮询", rc_finish: "结束", rc_csv: "导出 CSV", rc_xlsx: "导出 Excel", rc_status: "结果",
    rc_connected: "在线", rc_officer: "应答人", rc_evidence: "视频核验", rc_call: "点名", rc_excuse: "请假",
    rc_reason: "请假原因：", rc_dwell: "每个值班室停留秒数：", yes: "是", no: "否",
    st_pending: "未点名", st_calling: "点名中", st_on_time: "按时应答", st_late: "迟到", st_absent: "缺席",
    st_offline: "离线", st_excused: "请假", st_not_called: "未点到",
    ph_scheduled: "未开始", ph_running: "进行中", ph_finished: "已结束", ph_cancelled: "已取消", ph_interrupted: "已中断",
    ev_verified: "通过", ev_no_face: "未见人脸", ev_frozen: "画面静止", ev_looped: "疑似循环录像", ev_black: "黑屏", ev_no_video: "无视频",
    rc_pdf: "导出 PDF", res_title: "督办与统计", res_notices: "督办通知", res_deadline: "办理期限", res_issue: "问题",
    res_state: "状态", res_response: "回复", res_respond: "回复", res_close: "办结", res_response_prompt: "办理情况：",
    no_open: "待回复", no_responded: "已回复", no_closed: "已办结", res_overdue: "（已超期）",
    res_stats: "月度统计", res_month: "月份", res_show: "查询", res_districts: "各区", res_units: "各单位",
    res_unit: "单位", res_rate: "到岗率", res_on_time_rate: "准点率", res_trend: "每日到岗率", res_none: "暂无",
    doc_console: "dutycall · 值班视频", doc_rollcall: "dutycall · 视频点名", doc_results: "dutycall · 督办与统计",
    doc_directory: "dutycall · 通讯录与值班表", rc_name: "点名名称", rc_default_name: "视频点名",
    roster_period: "值班期间", roster_from: "开始日期", roster_to: "结束日期", roster_file: "值班表文件",
    // The incidents page (/incidents).
    inc_title: "突发事件", inc_doc: "dutycall · 突发事件", inc_list: "事件列表", inc_new: "新建事件（初报）",
    inc_new_title: "新建事件 · 初报", inc_back: "返回列表", inc_cancel: "取消",
    inc_f_status: "状态", inc_f_category: "类别", inc_f_level: "等级", inc_f_unit: "单位", inc_f_from: "发生日期从",
    inc_f_to: "至", inc_f_apply: "查询", inc_f_clear: "清除", inc_all: "全部", inc_all_open: "全部（不含已合并）",
    inc_col_occurred: "发生时间", inc_col_title: "事件名称", inc_col_unit: "责任单位", inc_col_category: "类别",
    inc_col_level: "等级", inc_col_status: "状态", inc_col_reports: "报告数", inc_col_flags: "标记",
    inc_none: "暂无符合条件的事件", inc_none_yet: "暂无", inc_badge_late: "迟报", inc_badge_missed: "漏报",
    inc_required_hint: "带 * 的为必填项；较大及以上（含未定级）事件初报还须填写伤亡人数和已采取的措施。",
    inc_choose: "请选择", inc_choose_category_first: "请先选择事件类别", inc_unit: "责任单位", inc_channel: "报告方式",
    inc_unit_missed_hint: "由本单位代下级单位录入的事件，将记为该下级单位漏报并向其发出督办。",
    inc_submit_initial: "提交初报", inc_submit_report: "提交报告", inc_fix_fields: "请修改标出的项目后再提交",
    inc_bad_input: "无法识别的数字", inc_bad_integer: "应为整数",
    inc_no: "编号", inc_recorded_by: "录入单位", inc_place: "发生地点", inc_occurred: "发生时间", inc_learned: "获知时间",
    inc_final_at: "终报时间", inc_closed_at: "关闭时间", inc_merged_into: "已并入",
    inc_flags: "迟报与漏报", inc_flag_due: "（应报时间 {due}，发现于 {detected}）", inc_flag_met: "已于 {at} 补报",
    inc_current: "当前情况（各次报告汇总）", inc_reports: "历次报告", inc_merged: "并入本事件的报告",
    inc_followup_n: "续报 {n}", inc_n_reports: "{n} 份报告", inc_unverified: "未核报", inc_verified: "已核报：{channel}（{at}）",
    inc_verify_channel: "核报渠道", inc_verify_note: "核报说明", inc_verify_result: "核实结果",
    inc_verify_yes: "情况属实", inc_verify_no: "未能核实", inc_verify_failed: "未能核实：{channel}（{at}）",
    inc_notice_response: "办理情况",
    inc_act_followup: "续报", inc_act_final: "终报", inc_act_instruct: "领导批示", inc_act_supervise: "督办",
    inc_act_merge: "合并事件", inc_act_close: "关闭事件", inc_act_verify: "核报", inc_act_ack: "签收",
    inc_act_feedback: "提交反馈", inc_close_confirm: "确定关闭该事件？关闭后不能再报送。",
    inc_more_elements: "更新其他要素（留空表示不变）",
    inc_instructions: "领导批示", inc_instruction_text: "批示内容", inc_instruction_units: "批示单位",
    inc_instruction_by: "{author} 批示", inc_submit_instruct: "发出批示", inc_ack: "签收", inc_acked: "{by} 已签收（{at}）",
    inc_not_acked: "未签收", inc_feedback: "反馈",
    inc_notices: "督办通知", inc_notice_reason: "督办事由", inc_notice_text: "督办内容", inc_notice_days: "办理期限（天）",
    inc_submit_supervise: "发出督办", inc_reason_late: "迟报", inc_reason_missed: "漏报", inc_reason_wrong: "错报",
    inc_reason_other: "其他",
    inc_merge_pick: "要并入本事件的事件", inc_merge_hint: "同一事件由多个单位报送时，可并入本事件；并入后原事件不再单独报送。",
    inc_merge_none: "辖区内没有可合并的其他事件", inc_submit_merge: "合并",
    inc_timeline: "时间线", inc_system: "系统", inc_tl_reported: "报送{report}（{channel}）",
    inc_tl_verified: "{report}已核报：{channel}", inc_tl_unverified: "{report}未能核实：{channel}",
    inc_tl_flagged: "标记{flag}（应报时间 {due}）", inc_tl_notice_issued: "发出督办：{reason}",
    inc_tl_notice_responded: "督办已回复：{reason}", inc_tl_notice_closed: "督办已办结：{reason}",
    inc_tl_instruction: "领导批示（致 {units}）", inc_tl_acknowledged: "{unit} 签收批示",
    inc_tl_feedback: "{unit} 反馈：{text}", inc_tl_merged_in: "并入事件 #{id}（{title}）",
    inc_tl_merged_into: "已并入事件 #{id}", inc_tl_closed: "事件关闭", inc_tl_from: "（原事件 #{id}）",
  },
  en: {
    title: "Duty video", room: "Room", name: "Name", join: "Join", leave: "Leave",
    switch_lang: "中文", me: "This console",
    status_idle: "Not connected", status_connecting: "Connecting…", status_connected: "Connected",
    status_reconnecting: "Connection lost, reconnecting…",
    state_new: "Waiting", state_connecting: "Connecting", state_connected: "Connected",
    state_disconnected: "Interrupted", state_failed: "Failed", state_closed: "Closed",
    err_media: "Cannot open camera or microphone: ", err_server: "Server error: ",
    username: "Username", password: "Password", sign_in: "Sign in", sign_out: "Sign out", signed_in_as: "Signed in as ",
    err_sign_in: "Sign-in failed: ", err_device: "This console's device credential is invalid or revoked; ask an administrator.",
    err_session_ended: "Your session has ended (signed out, password reset or access changed); please sign in again.",
    dir_title: "Units and roster", to_console: "Video console", contacts: "Contacts", search_hint: "Name, pinyin initials or phone",
    units: "Units", code: "Code", unit_name: "Name", kind: "Kind", duty_rooms: "Duty rooms", actions: "Actions",
    new_unit: "New unit", new_room: "New duty room", room_name: "Duty room name", phone: "Phone", create: "Create",
    rename: "Rename", move: "Move", deactivate: "Deactivate", new_name: "New name:", new_parent: "Move under (unit code):",
    kind_city: "City", kind_district: "District", kind_street: "Street", kind_agency: "Agency", kind_enterprise: "Enterprise",
    roster: "Holiday roster", download_template: "Download template", download_handbook: "Download handbook", upload: "Upload",
    status: "Submissions", submitted: "submitted", not_submitted: "not submitted", saved: "Rows saved: ",
    type_unit: "Unit", type_duty_room: "Duty room", type_person: "Person",
    console_link: "Console sign-in link", issue_link: "Issue link", accounts: "Accounts", display_name: "Name", role: "Role",
    new_account: "New account", disable: "Disable", role_admin: "Administrator", role_host: "Host", role_duty_officer: "Duty officer",
    role_leader: "Leader", role_viewer: "Viewer", link_once: "Open once on that duty room's PC (shown only now): ",
    ring_title: "Roll-call: please answer", answer: "Present", answered: "Answered", floor: "On the floor",
    ring_who: "Who is answering:", ring_officer: "duty officer", ring_leader: "shift leader", ring_none: "Nobody rostered here today",
    ring_other: "Someone else", ring_other_name: "Name", err_officer: "Enter a name of at most 64 characters, no control characters",
    rc_on_roster: "On the roster", ev_lost: "evidence lost (server stopped)",
    rc_title: "Roll-call", rc_new: "New roll-call", rc_window: "Answer window (s)", rc_late: "Late after (s)",
    rc_board: "Board", rc_start: "Start", rc_next: "Call next", rc_skip: "Skip", rc_poll: "Auto-poll",
    rc_stop_poll: "Stop polling", rc_finish: "Finish", rc_csv: "CSV", rc_xlsx: "Excel", rc_status: "Result",
    rc_connected: "Online", rc_officer: "Answered by", rc_evidence: "Camera check", rc_call: "Call", rc_excuse: "Excuse",
    rc_reason: "Reason:", rc_dwell: "Seconds per room:", yes: "yes", no: "no",
    st_pending: "Not yet called", st_calling: "Calling", st_on_time: "On time", st_late: "Late", st_absent: "Absent",
    st_offline: "Offline", st_excused: "Excused", st_not_called: "Not called",
    ph_scheduled: "not started", ph_running: "running", ph_finished: "finished", ph_cancelled: "cancelled", ph_interrupted: "interrupted",
    ev_verified: "verified", ev_no_face: "no face", ev_frozen: "frozen", ev_looped: "looped recording", ev_black: "black", ev_no_video: "no video",
    rc_pdf: "PDF", res_title: "Notices and statistics", res_notices: "Supervision notices", res_deadline: "Deadline",
    res_issue: "Issue", res_state: "State", res_response: "Response", res_respond: "Respond", res_close: "Close",
    res_response_prompt: "What was done:", no_open: "awaiting response", no_responded: "responded", no_closed: "closed",
    res_overdue: " (overdue)", res_stats: "Monthly statistics", res_month: "Month", res_show: "Show",
    res_districts: "Districts", res_units: "Units", res_unit: "Unit", res_rate: "Attendance rate",
    res_on_time_rate: "On-time rate", res_trend: "Daily attendance rate", res_none: "none",
    doc_console: "dutycall · Duty video", doc_rollcall: "dutycall · Roll-call", doc_results: "dutycall · Notices and statistics",
    doc_directory: "dutycall · Contacts and roster", rc_name: "Title", rc_default_name: "Video roll-call",
    roster_period: "Period", roster_from: "From", roster_to: "To", roster_file: "Roster file",
    // The incidents page (/incidents).
    inc_title: "Incidents", inc_doc: "dutycall · Incidents", inc_list: "Incident list", inc_new: "New incident (first report)",
    inc_new_title: "New incident · first report", inc_back: "Back to the list", inc_cancel: "Cancel",
    inc_f_status: "Status", inc_f_category: "Category", inc_f_level: "Level", inc_f_unit: "Unit", inc_f_from: "Occurred from",
    inc_f_to: "to", inc_f_apply: "Filter", inc_f_clear: "Clear", inc_all: "All", inc_all_open: "All (except merged)",
    inc_col_occurred: "Occurred", inc_col_title: "Title", inc_col_unit: "Responsible unit", inc_col_category: "Category",
    inc_col_level: "Level", inc_col_status: "Status", inc_col_reports: "Reports", inc_col_flags: "Flags",
    inc_none: "No incidents match", inc_none_yet: "None yet", inc_badge_late: "Late", inc_badge_missed: "Unreported",
    inc_required_hint: "Fields marked * are required; a first report at level III or above (or not yet rated) also needs the casualty counts and the measures taken.",
    inc_choose: "Choose…", inc_choose_category_first: "Choose a category first", inc_unit: "Responsible unit", inc_channel: "Reported",
    inc_unit_missed_hint: "Recording an incident for a unit below yours counts as that unit's failure to report (unreported), with a supervision notice to it.",
    inc_submit_initial: "Submit first report", inc_submit_report: "Submit report", inc_fix_fields: "Correct the marked fields and submit again",
    inc_bad_input: "Not a number", inc_bad_integer: "Must be a whole number",
    inc_no: "No.", inc_recorded_by: "Recorded by", inc_place: "Place", inc_occurred: "Occurred", inc_learned: "Learned",
    inc_final_at: "Final report", inc_closed_at: "Closed", inc_merged_into: "Merged into",
    inc_flags: "Late and unreported", inc_flag_due: "(due {due}, found {detected})", inc_flag_met: "reported at {at}",
    inc_current: "Current view (all reports together)", inc_reports: "Reports as filed", inc_merged: "Merged into this incident",
    inc_followup_n: "Follow-up {n}", inc_n_reports: "{n} report(s)", inc_unverified: "Not verified", inc_verified: "Verified: {channel} ({at})",
    inc_verify_channel: "Checked through", inc_verify_note: "Verification note", inc_verify_result: "Result",
    inc_verify_yes: "Confirmed", inc_verify_no: "Could not be confirmed", inc_verify_failed: "Not confirmed: {channel} ({at})",
    inc_notice_response: "What was done",
    inc_act_followup: "Follow-up report", inc_act_final: "Final report", inc_act_instruct: "Instruction", inc_act_supervise: "Supervise",
    inc_act_merge: "Merge incidents", inc_act_close: "Close incident", inc_act_verify: "Verify", inc_act_ack: "Acknowledge",
    inc_act_feedback: "Send feedback", inc_close_confirm: "Close this incident? No more reports can be filed.",
    inc_more_elements: "Update other elements (blank ones stay as they are)",
    inc_instructions: "Leaders' instructions", inc_instruction_text: "Instruction", inc_instruction_units: "Addressed to",
    inc_instruction_by: "Instruction by {author}", inc_submit_instruct: "Issue instruction", inc_ack: "Acknowledged",
    inc_acked: "acknowledged by {by} ({at})", inc_not_acked: "not acknowledged", inc_feedback: "Feedback",
    inc_notices: "Supervision notices", inc_notice_reason: "Reason", inc_notice_text: "Notice", inc_notice_days: "Days to answer",
    inc_submit_supervise: "Issue notice", inc_reason_late: "Late report", inc_reason_missed: "Unreported", inc_reason_wrong: "Wrong report",
    inc_reason_other: "Other",
    inc_merge_pick: "Incidents to merge into this one", inc_merge_hint: "When several units reported the same event, merge their incidents into this one; merged incidents take no more reports.",
    inc_merge_none: "No other incident in scope to merge", inc_submit_merge: "Merge",
    inc_timeline: "Timeline", inc_system: "system", inc_tl_reported: "{report} filed ({channel})",
    inc_tl_verified: "{report} verified: {channel}", inc_tl_unverified: "{report} could not be confirmed: {channel}",
    inc_tl_flagged: "Flagged: {flag} (due {due})", inc_tl_notice_issued: "Supervision notice issued: {reason}",
    inc_tl_notice_responded: "Supervision notice answered: {reason}", inc_tl_notice_closed: "Supervision notice closed: {reason}",
    inc_tl_instruction: "Instruction to {units}", inc_tl_acknowledged: "{unit} acknowledged the instruction",
    inc_tl_feedback: "{unit} reported back: {text}", inc_tl_merged_in: "Merged in incident #{id} ({title})",
    inc_tl_merged_into: "Merged into incident #{id}", inc_tl_closed: "Incident closed", inc_tl_from: "(from incident #{id})",
  },
};

function pickLanguage() {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  const chosen = fromUrl || localStorage.getItem("dutycall.lang") || "zh-CN";
  return chosen.toLowerCase().startsWith("en") ? "en" : "zh-CN";
}

// The server writes its messages (errors included) in the page's language: it reads this
// cookie on every request and on the signalling socket (api() also sends X-Dutycall-Lang).
function rememberLanguage(lang) {
  document.cookie = `dutycall_lang=${lang}; path=/; max-age=31536000; SameSite=Strict`;
}

let LANG = pickLanguage();
rememberLanguage(LANG);

function t(key) {
  return (MESSAGES[LANG] && MESSAGES[LANG][key]) || MESSAGES["zh-CN"][key] || key;
}

function applyLanguage() {
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  // A default value follows the language until someone types over it (the value is then dirty and stays).
  for (const el of document.querySelectorAll("[data-i18n-value]")) el.defaultValue = t(el.dataset.i18nValue);
  document.dispatchEvent(new Event("languagechange"));
}

function setLanguage(lang) {
  LANG = lang;
  localStorage.setItem("dutycall.lang", lang);
  rememberLanguage(lang);
  applyLanguage();
}
