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
    ring_who: "Who is answering:", ring_officer: "officer", ring_leader: "shift leader", ring_none: "Nobody rostered here today",
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
    res_districts: "Districts", res_units: "Units", res_unit: "Unit", res_rate: "Attendance", res_on_time_rate: "On time",
    res_trend: "Daily attendance rate", res_none: "none",
  },
};

function pickLanguage() {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  const chosen = fromUrl || localStorage.getItem("dutycall.lang") || "zh-CN";
  return chosen.toLowerCase().startsWith("en") ? "en" : "zh-CN";
}

let LANG = pickLanguage();

function t(key) {
  return (MESSAGES[LANG] && MESSAGES[LANG][key]) || MESSAGES["zh-CN"][key] || key;
}

function applyLanguage() {
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.dispatchEvent(new Event("languagechange"));
}

function setLanguage(lang) {
  LANG = lang;
  localStorage.setItem("dutycall.lang", lang);
  applyLanguage();
}
