// Interface text. Simplified Chinese by default; English on request (?lang=en or the button).
"use strict";
const MESSAGES = {
  "zh-CN": {
    gr_doc: "dutycall · 领导慰问", gr_title: "领导慰问", gr_new: "发起慰问", gr_f_title: "标题",
    gr_leader: "代表领导", gr_leader_pick: "请选择领导", gr_no_leaders: "管辖范围内没有领导账号", gr_when: "时间", gr_now: "手动开始", gr_at: "定时开始",
    gr_units: "对象单位（不选：管辖范围内全部值班室）", gr_create: "创建", gr_list: "慰问列表", gr_col_title: "标题",
    gr_col_leader: "领导", gr_col_status: "状态", gr_col_time: "时间", gr_col_rooms: "收看/对象", gr_start: "开始",
    gr_enter: "进入直播", gr_end: "结束", gr_cancel: "取消", gr_receipts: "回执", gr_status_scheduled: "未开始",
    gr_status_live: "进行中", gr_status_ended: "已结束", gr_status_cancelled: "已取消", gr_live: "直播中",
    gr_reply: "请其发言", gr_return: "收回发言", gr_col_room: "值班室", gr_col_unit: "单位", gr_col_joined: "首次加入",
    gr_col_watched: "收看时长（秒）", gr_col_joins: "加入次数", gr_offline: "未收看（离线）", gr_watching_now: "正在收看",
    gr_left: "已离开", gr_missed: "未收看、需跟进的值班室", gr_none: "无", gr_speaking: "发言中",
    gr_console_title: "领导慰问：{leader}　{title}", gr_enable_sound: "开启声音",
    gr_watching: "{n}/{total} 个值班室正在收看",
    gr_upcoming: "即将开始的领导慰问：",
    gr_media: "慰问视频", gr_media_none: "无（领导现场讲话）", gr_late: "迟到的值班室",
    gr_late_live: "从当前进度观看", gr_kind_media: "录播视频", gr_kind_media_named: "录播视频：{label}", gr_late_start: "从头观看", gr_upload: "上传慰问视频（MP4/WebM）",
    gr_uploading: "正在上传…", gr_preparing: "正在处理视频…", gr_upload_ready: "视频已就绪，可选用",
    gr_upload_failed: "视频处理失败：", gr_camera: "出镜讲话",
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
    alert_ack: "确认收到", alert_from: "报送/批示人：", alert_instruction: "领导批示", alert_stage_initial: "突发事件初报",
    alert_followup: "突发事件续报（第 {n} 次）", alert_stage_final: "突发事件终报",
    alert_level_I: "I级（特别重大）", alert_level_II: "II级（重大）", alert_level_III: "III级（较大）",
    alert_level_IV: "IV级（一般）", alert_level_unrated: "未定级",
    alert_category_natural: "自然灾害", alert_category_accident: "事故灾难", alert_category_health: "公共卫生事件",
    alert_category_social: "社会安全事件",
    ring_other: "其他人员", ring_other_name: "姓名", err_officer: "请填写 64 个字符以内的姓名，不含控制字符",
    ring_countdown: "剩余 {n} 秒", con_answered_at: "已应答 {time}（{who}）", con_missed: "未应答（应答时限已过，已记录）",
    con_pick: "进入", con_pick_rollcalls: "视频点名", con_pick_standby: "值班室（抽查）", con_pick_other: "其他会商室（输入名称）…",
    con_none: "暂无", con_kind_standby: "待命", con_kind_rollcall: "视频点名", con_kind_meeting: "会商室",
    con_phase_scheduled: "未开始", con_phase_running: "进行中", con_sep: "：",
    dir_show_all: "显示全部（共 {n} 条）", dir_expand: "展开", dir_collapse: "收起", dir_expand_all: "全部展开",
    dir_collapse_all: "全部收起", dir_filter: "按名称、编码或电话筛选", dir_credentials: "终端凭证", dir_revoke: "吊销",
    dir_revoked_at: "已吊销（{at}）", dir_used_at: "最近使用 {at}", dir_unused: "尚未使用", dir_issued_at: "生成于 {at}",
    dir_confirm_revoke: "吊销“{room}”的这个终端凭证？使用它的值班电脑将立即退出登录，需重新生成链接。",
    dir_confirm_disable: "停用账号 {name}？该账号将立即退出登录。",
    dir_confirm_deactivate: "停用单位“{name}”？其下级单位、值班室和账号都将无法登录（历史记录保留）。",
    res_confirm_close: "确定办结该督办通知？办结后不能再回复。", res_col_on_time: "按时应答（次）",
    res_col_rate: "到岗率（%）", res_col_on_time_rate: "准点率（%）",
    err_connection_lost: "与服务器的连接已断开", err_not_connected: "尚未连接到服务器", err_no_reply: "服务器没有应答，请稍后再试",
    err_http: "服务器返回错误（{status}）", media_NotAllowedError: "未允许使用摄像头和麦克风：请在浏览器地址栏左侧的权限设置中允许",
    media_NotFoundError: "未找到摄像头或麦克风：请检查连接", media_NotReadableError: "摄像头或麦克风正被其他程序使用",
    media_other: "摄像头或麦克风无法使用",
    con_confirm_leave: "确定离开？离开后本值班室显示为离线，无法被点名。",
    con_confirm_sign_out: "确定退出登录？退出后本值班室显示为离线；再次登录需要管理员重新生成终端登录链接。",
    rc_on_roster: "在值班表中", ev_lost: "证据丢失（服务器中断）",
    rp_command: "指挥席", rp_cancel: "取消点名", rp_close: "关闭看板", rp_empty: "暂无",
    rp_confirm_finish: "确定结束本次点名？尚未点到的值班室将记为“未点到”。", rp_confirm_cancel: "确定取消本次点名？",
    rp_board_summary: "共 {total} 个值班室 · 在线 {online} · 已应答 {answered} · 迟到 {late} · 缺席/离线 {absent}",
    rp_in_room: "已进入点名", rp_offline: "离线", rp_no_video: "无视频", rp_no_audio: "无音频", rp_ready: "就绪",
    rp_precheck: "入场检查", rp_precheck_summary: "就绪 {ready} / 共 {total}", rp_no_rooms_picked: "请先选择值班室",
    rp_search: "名称或拼音首字母", rp_all: "全选", rp_none: "全不选", rp_picked: "已选 {n} 个值班室",
    rp_groups: "常用分组：", rp_group_name: "分组名称", rp_group_shared: "本单位共享", rp_save_group: "保存为分组",
    rp_delete: "删除", rp_confirm_delete_group: "删除分组“{name}”？", rp_plans: "点名计划", rp_plan_new: "新建计划",
    rp_plan_edit: "编辑计划", rp_plan_title: "计划名称", rp_schedule: "时间安排", rp_target: "点名范围",
    rp_next: "下次点名", rp_state: "状态", rp_kinds: "单位类型（不选为全部）", rp_repeat: "重复", rp_weekly: "每周",
    rp_monthly: "每月", rp_weekdays: "星期", rp_monthday: "每月几号", rp_time: "时间", rp_next5: "接下来五次：",
    rp_save: "保存", rp_cancel_edit: "取消编辑", rp_edit: "编辑", rp_pause: "暂停", rp_resume: "恢复",
    rp_paused: "已暂停", rp_active: "启用", rp_custom: "自定义规则", rp_every_week: "每周{days} {time}",
    rp_every_month: "每月 {day} 日 {time}", rp_confirm_delete_plan: "删除点名计划“{title}”？已进行的点名记录保留。",
    rp_wd_MO: "一", rp_wd_TU: "二", rp_wd_WE: "三", rp_wd_TH: "四", rp_wd_FR: "五", rp_wd_SA: "六", rp_wd_SU: "日",
    rp_history: "历史点名", rp_date: "时间", rp_host: "主持人", rp_rooms: "值班室数", rp_answered_rate: "应答率",
    rp_late_rate: "迟到率", rp_absent_rate: "缺席率", rp_open: "查看", rp_weekday: "周{d}",
    rc_title: "视频点名", rc_new: "发起点名", rc_window: "应答时限（秒）", rc_late: "迟到阈值（秒）",
    rc_board: "点名看板", rc_start: "开始", rc_next: "点下一个", rc_skip: "跳过", rc_poll: "自动轮询",
    rc_stop_poll: "停止轮询", rc_finish: "结束", rc_csv: "导出 CSV", rc_xlsx: "导出 Excel", rc_status: "结果",
    rc_connected: "在线", rc_officer: "应答人", rc_evidence: "视频核验", rc_call: "点名", rc_excuse: "请假",
    rc_reason: "请假原因：", rc_dwell: "每个值班室停留秒数：", yes: "是", no: "否",
    st_pending: "未点名", st_calling: "点名中", st_on_time: "按时应答", st_late: "迟到", st_absent: "缺席",
    st_offline: "离线", st_excused: "请假", st_not_called: "未点到",
    st_late_first: "迟报（首报超时）", st_late_written: "迟报（书面报告超时）", st_late_followup: "迟报（续报超时）",
    st_missed: "漏报", res_subject: "值班室/事件",
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
    inc_unchanged: "不变", inc_unchanged_value: "不变（现为：{value}）", inc_now: "现为：{value}",
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
    inc_tl_merged_into: "已并入事件 #{id}", inc_tl_closed: "事件关闭", inc_tl_footage_started: "现场视频接入（视频 {video}），开始录制",
    inc_tl_footage_stopped: "现场视频结束（{seconds} 秒），录像已归档",
    inc_tl_camera_lost: "（摄像机连接中断，正在自动重连）", inc_tl_footage_watched: "通过 WHEP 播放器观看现场视频 {seconds} 秒",
    inc_tl_footage_recording_stopped: "录像磁盘空间不足（剩余 {free} MB，至少需要 {min} MB），已停止录像，现场视频仍在直播",
    inc_tl_footage_recording_refused: "录像磁盘空间不足（剩余 {free} MB，至少需要 {min} MB），未能开始录像",
    inc_tl_footage_expired: "{count} 段录像已超过保存期限（{days} 天），文件已删除，记录和哈希值保留", inc_alerts: "提醒送达", inc_alert_report: "报告提醒", inc_alert_instruction: "批示提醒",
    inc_alert_acked: "已确认（{at}）", inc_alert_shown: "已送达，未确认", inc_alert_waiting: "终端未在线，待送达",
    inc_tl_alert_ack_report: "值班室终端确认收到报告提醒",
    inc_tl_alert_ack_instruction: "值班室终端确认收到批示提醒", inc_tl_from: "（原事件 #{id}）",
    // Field streaming: the phone page (field.js) and the incident page's links (incident-detail.js).
    fld_doc: "dutycall · 现场视频", fld_title: "现场视频", fld_start: "开始直播", fld_stop: "结束直播", fld_live: "直播中",
    fld_switch: "切换摄像头", fld_reconnecting: "网络中断，正在重连…", fld_connecting: "正在连接…",
    fld_stopped: "已结束直播，可再次开始", fld_no_camera: "无法打开摄像头：", fld_error: "连接服务器失败：",
    fld_hint: "请将手机对准现场，按“开始直播”。画面将实时传到值班室并录像。",
    fld_no_link: "链接不完整：请重新扫描二维码", fld_expires: "链接有效期至 {at}",
    inc_field: "现场视频链接", inc_field_label: "名称（如：消防一组手机）", inc_field_minutes: "有效期（分钟）",
    inc_field_make: "生成链接", inc_field_once: "请用手机扫描二维码或打开此链接（只显示这一次，仅限第一台打开的手机使用）：",
    inc_field_qr: "现场视频链接二维码", inc_field_expires: "有效期至 {at}", inc_field_revoke: "撤销",
    inc_field_revoke_confirm: "撤销后链接立即失效，正在进行的直播随即结束。确定撤销？",
    inc_field_live: "直播中", inc_field_revoked: "已撤销", inc_field_expired: "已过期", inc_field_claimed: "已在手机上打开",
    inc_field_unclaimed: "尚未打开", inc_field_none: "暂无现场视频链接",
    // Devices on the incident page: WHIP encoders/drones and RTSP cameras.
    inc_devices: "设备接入", inc_whip: "编码器 / 无人机（WHIP）",
    inc_whip_hint: "为编码器或无人机生成接入令牌：在设备的 WHIP 推流设置中填写下方地址和令牌（Bearer）。撤销令牌会立即结束其推流。",
    inc_whip_label: "名称（如：无人机一号）", inc_whip_hours: "有效期（小时）", inc_whip_make: "生成接入令牌",
    inc_whip_once: "请立即填写到设备中（令牌只显示这一次）：", inc_whip_endpoint: "WHIP 地址", inc_whip_token: "令牌",
    inc_whip_valid: "有效", inc_whip_used: "最近推流 {at}", inc_whip_unused: "尚未使用", inc_whip_none: "暂无接入令牌",
    inc_whip_revoke_confirm: "撤销后令牌立即失效，正在进行的推流随即结束。确定撤销？",
    inc_rtsp: "网络摄像机（RTSP）",
    inc_rtsp_hint: "输入摄像机、无人机或视频监控平台的 RTSP 地址，服务器将拉取画面（不转码）、转发并录像；断线后自动重连。",
    inc_rtsp_label: "名称（如：路口监控 3 号）", inc_rtsp_url: "RTSP 地址", inc_rtsp_add: "接入摄像机",
    inc_rtsp_live: "直播中（自 {at}）", inc_rtsp_retrying: "连接中断，{at} 重试（第 {attempts} 次）",
    inc_rtsp_stopped: "已停止（{at}）", inc_rtsp_connecting: "正在连接…", inc_rtsp_stop: "停止",
    inc_rtsp_stop_confirm: "停止拉取此摄像机的画面？已录制的视频会保留。", inc_rtsp_none: "暂无接入的摄像机",
    // Footage on the incident page (playback, download, relay, access) and the console's relay panels.
    inc_footage: "现场视频", inc_footage_loading: "正在读取现场视频…", inc_footage_none: "暂无现场视频",
    inc_footage_live: "直播中", inc_footage_ended: "已结束（{at}）", inc_footage_play: "播放", inc_footage_download: "下载",
    inc_footage_hashing: "（录制中，结束后计算）", inc_footage_from: "从", inc_footage_to: "到",
    inc_footage_range_download: "下载该时间段（不重新编码）", inc_relay_rooms: "转发到值班室", inc_relay_leaders: "转发给领导",
    inc_relay_start: "实时转发", inc_relay_stop: "停止转发", inc_relay_live: "正在转发给 {to}（观看：{watching}）",
    inc_relay_ended: "曾转发给 {to}，{at} 停止", inc_relay_end_stopped: "主持人停止", inc_relay_end_source_ended: "视频源已结束",
    inc_relay_end_server_stopped: "服务器停止", inc_tl_relay_started: "现场视频“{source}”实时转发给 {to}",
    inc_tl_relay_stopped: "现场视频转发停止（{reason}）", inc_tl_relay_watch_joined: "开始观看转发的现场视频",
    inc_tl_relay_watch_left: "停止观看转发的现场视频（{seconds} 秒）", inc_footage_access: "影像访问记录",
    inc_access_at: "时间", inc_access_who: "访问者", inc_access_action: "操作", inc_access_what: "内容", inc_access_address: "来源地址",
    inc_access_watched_live: "实时观看", inc_access_relayed: "转发", inc_access_played: "回放", inc_access_downloaded: "下载",
    inc_access_range: "时间段 {from} – {to}", inc_access_segment: "片段 #{id}", inc_access_source: "视频源 #{id}",
    relay_heading: "现场视频转发", relay_connecting: "正在接收…", relay_ended: "转发已结束", relay_close: "关闭",
    // The command seat and the wall (/command).
    doc_command: "dutycall · 指挥席", cmd_title: "指挥席", cmd_open: "指挥席（视频与多画面）", cmd_called: "正在点名",
    cmd_seat_empty: "点击下方画面墙中的值班室，在此查看其实时画面", cmd_mute: "静音", cmd_unmute: "取消静音",
    cmd_leave_spot: "结束抽查", cmd_wall: "多画面", cmd_per_page: "每页", cmd_prev: "上一页", cmd_next: "下一页",
    cmd_left: "剩余 {s} 秒", cmd_age: "{s} 秒前", cmd_no_picture: "暂无画面", cmd_rooms: "共 {n} 个值班室",
    cmd_online: "在线", cmd_spot: "抽查", cmd_scope_title: "我的值班室（实时）",
  },
  en: {
    gr_doc: "dutycall · Leadership greetings", gr_title: "Leadership greetings", gr_new: "New greeting", gr_f_title: "Title",
    gr_leader: "On behalf of", gr_leader_pick: "Choose a leader", gr_no_leaders: "No leader account in your scope", gr_when: "When", gr_now: "Start by hand", gr_at: "Start at",
    gr_units: "Units (none: every duty room in your scope)", gr_create: "Create", gr_list: "Greetings", gr_col_title: "Title",
    gr_col_leader: "Leader", gr_col_status: "Status", gr_col_time: "Time", gr_col_rooms: "Watching/rooms", gr_start: "Start",
    gr_enter: "Go live", gr_end: "End", gr_cancel: "Cancel", gr_receipts: "Receipts", gr_status_scheduled: "Scheduled",
    gr_status_live: "Live", gr_status_ended: "Ended", gr_status_cancelled: "Cancelled", gr_live: "Live",
    gr_reply: "Bring up", gr_return: "Return the floor", gr_col_room: "Duty room", gr_col_unit: "Unit", gr_col_joined: "First joined",
    gr_col_watched: "Watched (s)", gr_col_joins: "Joins", gr_offline: "Missed (offline)", gr_watching_now: "Watching",
    gr_left: "Left", gr_missed: "Rooms that missed it (follow up)", gr_none: "None", gr_speaking: "Speaking",
    gr_console_title: "Greeting from {leader}: {title}", gr_enable_sound: "Turn sound on",
    gr_watching: "{n} of {total} duty rooms watching",
    gr_upcoming: "Greetings to come: ",
    gr_media: "Recorded video", gr_media_none: "None (the leader speaks live)", gr_late: "Rooms joining late",
    gr_late_live: "join where it is", gr_kind_media: "Recorded video", gr_kind_media_named: "Recorded video: {label}", gr_late_start: "see it from the start", gr_upload: "Upload a greeting video (MP4/WebM)",
    gr_uploading: "Uploading…", gr_preparing: "Preparing the video…", gr_upload_ready: "The video is ready to choose",
    gr_upload_failed: "The video could not be prepared: ", gr_camera: "Go on camera",
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
    alert_ack: "Acknowledge", alert_from: "From: ", alert_instruction: "Leader's instruction",
    alert_stage_initial: "Incident: first report", alert_followup: "Incident: follow-up report {n}",
    alert_stage_final: "Incident: final report",
    alert_level_I: "Level I (extremely serious)", alert_level_II: "Level II (serious)", alert_level_III: "Level III (major)",
    alert_level_IV: "Level IV (general)", alert_level_unrated: "Not yet rated",
    alert_category_natural: "Natural disaster", alert_category_accident: "Accident", alert_category_health: "Public health",
    alert_category_social: "Social safety",
    ring_other: "Someone else", ring_other_name: "Name", err_officer: "Enter a name of at most 64 characters, no control characters",
    ring_countdown: "{n} s left", con_answered_at: "Answered at {time} ({who})", con_missed: "Not answered (the answer window passed; recorded)",
    con_pick: "Enter", con_pick_rollcalls: "Roll-calls", con_pick_standby: "Duty rooms (spot-check)", con_pick_other: "Another meeting room (type a name)…",
    con_none: "None", con_kind_standby: "Standby", con_kind_rollcall: "Roll-call", con_kind_meeting: "Meeting room",
    con_phase_scheduled: "not started", con_phase_running: "in progress", con_sep: ": ",
    dir_show_all: "Show all ({n})", dir_expand: "Expand", dir_collapse: "Collapse", dir_expand_all: "Expand all",
    dir_collapse_all: "Collapse all", dir_filter: "Filter by name, code or phone", dir_credentials: "Console credentials", dir_revoke: "Revoke",
    dir_revoked_at: "revoked ({at})", dir_used_at: "last used {at}", dir_unused: "never used", dir_issued_at: "issued {at}",
    dir_confirm_revoke: "Revoke this console credential of {room}? The duty PC using it is signed out at once and needs a new link.",
    dir_confirm_disable: "Disable the account {name}? It is signed out at once.",
    dir_confirm_deactivate: "Deactivate {name}? Its sub-units, duty rooms and accounts can no longer sign in (history is kept).",
    res_confirm_close: "Close this supervision notice? It cannot be answered afterwards.", res_col_on_time: "Answered on time (count)",
    res_col_rate: "Attendance rate (%)", res_col_on_time_rate: "On-time rate (%)",
    err_connection_lost: "The connection to the server was lost", err_not_connected: "Not connected to the server yet", err_no_reply: "The server did not answer; try again",
    err_http: "The server answered with an error ({status})", media_NotAllowedError: "Camera and microphone not allowed: allow them in the browser's site settings, left of the address bar",
    media_NotFoundError: "No camera or microphone found: check the cables", media_NotReadableError: "The camera or microphone is in use by another program",
    media_other: "The camera or microphone cannot be used",
    con_confirm_leave: "Leave? This duty room will show as offline and cannot be called.",
    con_confirm_sign_out: "Sign out? This duty room will show as offline; signing in again needs a new console link from an administrator.",
    rc_on_roster: "On the roster", ev_lost: "evidence lost (server stopped)",
    rp_command: "Command seat", rp_cancel: "Cancel roll-call", rp_close: "Close board", rp_empty: "None yet",
    rp_confirm_finish: "Finish this roll-call? Rooms not called yet are recorded as not called.",
    rp_confirm_cancel: "Cancel this roll-call?",
    rp_board_summary: "{total} rooms · online {online} · answered {answered} · late {late} · absent/offline {absent}",
    rp_in_room: "in the roll-call", rp_offline: "offline", rp_no_video: "no camera", rp_no_audio: "no microphone",
    rp_ready: "ready", rp_precheck: "Pre-check", rp_precheck_summary: "{ready} of {total} ready",
    rp_no_rooms_picked: "Choose duty rooms first", rp_search: "Name or pinyin initials", rp_all: "All", rp_none: "None",
    rp_picked: "{n} rooms chosen", rp_groups: "Saved groups:", rp_group_name: "Group name",
    rp_group_shared: "Share with my unit", rp_save_group: "Save as group", rp_delete: "Delete",
    rp_confirm_delete_group: "Delete the group \"{name}\"?", rp_plans: "Plans", rp_plan_new: "New plan",
    rp_plan_edit: "Edit plan", rp_plan_title: "Plan", rp_schedule: "Schedule", rp_target: "Units",
    rp_next: "Next", rp_state: "State", rp_kinds: "Unit kinds (none: all)", rp_repeat: "Repeat", rp_weekly: "Weekly",
    rp_monthly: "Monthly", rp_weekdays: "Weekdays", rp_monthday: "Day of month", rp_time: "Time",
    rp_next5: "Next five:", rp_save: "Save", rp_cancel_edit: "Cancel editing", rp_edit: "Edit", rp_pause: "Pause",
    rp_resume: "Resume", rp_paused: "paused", rp_active: "active", rp_custom: "Custom rule",
    rp_every_week: "Every {days} at {time}", rp_every_month: "Monthly on day {day} at {time}",
    rp_confirm_delete_plan: "Delete the plan \"{title}\"? Roll-calls it ran are kept.",
    rp_wd_MO: "Mon", rp_wd_TU: "Tue", rp_wd_WE: "Wed", rp_wd_TH: "Thu", rp_wd_FR: "Fri", rp_wd_SA: "Sat", rp_wd_SU: "Sun",
    rp_history: "Past roll-calls", rp_date: "When", rp_host: "Host", rp_rooms: "Rooms", rp_answered_rate: "Answered",
    rp_late_rate: "Late", rp_absent_rate: "Absent", rp_open: "Open", rp_weekday: "{d}",
    rc_title: "Roll-call", rc_new: "New roll-call", rc_window: "Answer window (s)", rc_late: "Late after (s)",
    rc_board: "Board", rc_start: "Start", rc_next: "Call next", rc_skip: "Skip", rc_poll: "Auto-poll",
    rc_stop_poll: "Stop polling", rc_finish: "Finish", rc_csv: "CSV", rc_xlsx: "Excel", rc_status: "Result",
    rc_connected: "Online", rc_officer: "Answered by", rc_evidence: "Camera check", rc_call: "Call", rc_excuse: "Excuse",
    rc_reason: "Reason:", rc_dwell: "Seconds per room:", yes: "yes", no: "no",
    st_pending: "Not yet called", st_calling: "Calling", st_on_time: "On time", st_late: "Late", st_absent: "Absent",
    st_offline: "Offline", st_excused: "Excused", st_not_called: "Not called",
    st_late_first: "Late first report", st_late_written: "Late written report", st_late_followup: "Late follow-up",
    st_missed: "Unreported by the responsible unit", res_subject: "Duty room / incident",
    ph_scheduled: "not started", ph_running: "running", ph_finished: "finished", ph_cancelled: "cancelled", ph_interrupted: "interrupted",
    ev_verified: "verified", ev_no_face: "no face", ev_frozen: "frozen", ev_looped: "looped recording", ev_black: "black", ev_no_video: "no video",
    rc_pdf: "PDF", res_title: "Notices and statistics", res_notices: "Supervision notices", res_deadline: "Deadline",
    res_issue: "Issue", res_state: "State", res_response: "Response", res_respond: "Respond", res_close: "Close",
    res_response_prompt: "What was done:", no_open: "awaiting response", no_responded: "responded", no_closed: "closed",
    res_overdue: " (overdue)", res_stats: "Monthly statistics", res_month: "Month", res_show: "Show",
    res_districts: "Districts", res_units: "Units", res_unit: "Unit", res_rate: "Attendance rate",
    res_on_time_rate: "On-time rate", res_trend: "Daily attendance rate", res_none: "None yet",
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
    inc_unchanged: "Unchanged", inc_unchanged_value: "Unchanged ({value})", inc_now: "Now: {value}",
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
    inc_tl_merged_into: "Merged into incident #{id}", inc_tl_closed: "Incident closed", inc_tl_footage_started: "On-scene video connected (video {video}), recording",
    inc_tl_footage_stopped: "On-scene video ended ({seconds} s), recording archived",
    inc_tl_camera_lost: " (camera connection lost, reconnecting by itself)", inc_tl_footage_watched: "Watched the on-scene video in a WHEP player for {seconds} s",
    inc_tl_footage_recording_stopped: "Recordings disk low ({free} MB free, {min} MB needed): recording stopped, the video stays live",
    inc_tl_footage_recording_refused: "Recordings disk low ({free} MB free, {min} MB needed): recording not started",
    inc_tl_footage_expired: "{count} footage segments past the retention period ({days} days): files deleted, records and hashes kept", inc_alerts: "Alerts delivered", inc_alert_report: "report alert",
    inc_alert_instruction: "instruction alert", inc_alert_acked: "acknowledged ({at})",
    inc_alert_shown: "shown, not yet acknowledged", inc_alert_waiting: "console offline, waiting",
    inc_tl_alert_ack_report: "A duty room's console acknowledged the report alert",
    inc_tl_alert_ack_instruction: "A duty room's console acknowledged the instruction alert", inc_tl_from: "(from incident #{id})",
    fld_doc: "dutycall · Field video", fld_title: "Field video", fld_start: "Go live", fld_stop: "Stop streaming",
    fld_live: "LIVE", fld_switch: "Switch camera", fld_reconnecting: "Connection lost, reconnecting…",
    fld_connecting: "Connecting…", fld_stopped: "Stopped; you can go live again", fld_no_camera: "Cannot open the camera: ",
    fld_error: "Cannot reach the server: ",
    fld_hint: "Point the phone at the scene and press Go live. The duty office sees it live and it is recorded.",
    fld_no_link: "The link is incomplete: scan the QR code again", fld_expires: "Link valid until {at}",
    inc_field: "Field video links", inc_field_label: "Label (e.g. fire team 1 phone)", inc_field_minutes: "Valid for (minutes)",
    inc_field_make: "Make a link", inc_field_once: "Scan the QR code with a phone or open this link (shown only this once; only the first phone that opens it may use it):",
    inc_field_qr: "QR code of the field video link", inc_field_expires: "valid until {at}", inc_field_revoke: "Revoke",
    inc_field_revoke_confirm: "Revoking ends the link at once and any live stream with it. Revoke?",
    inc_field_live: "live", inc_field_revoked: "revoked", inc_field_expired: "expired", inc_field_claimed: "opened on a phone",
    inc_field_unclaimed: "not opened yet", inc_field_none: "No field video links yet",
    inc_devices: "Devices", inc_whip: "Encoders / drones (WHIP)",
    inc_whip_hint: "Issue a token for an encoder or drone: enter the endpoint and token (Bearer) below in the device's WHIP settings. Revoking a token ends its stream at once.",
    inc_whip_label: "Label (e.g. drone 1)", inc_whip_hours: "Valid for (hours)", inc_whip_make: "Issue a token",
    inc_whip_once: "Enter these in the device now (the token is shown only this once):", inc_whip_endpoint: "WHIP endpoint", inc_whip_token: "Token",
    inc_whip_valid: "valid", inc_whip_used: "last streamed {at}", inc_whip_unused: "not used yet", inc_whip_none: "No tokens yet",
    inc_whip_revoke_confirm: "Revoking ends the token at once and any live stream with it. Revoke?",
    inc_rtsp: "IP cameras (RTSP)",
    inc_rtsp_hint: "Enter the RTSP address of a camera, drone or CCTV platform: the server pulls it (no re-encoding), relays and records it, and reconnects by itself when it drops.",
    inc_rtsp_label: "Label (e.g. junction camera 3)", inc_rtsp_url: "RTSP address", inc_rtsp_add: "Add camera",
    inc_rtsp_live: "live (since {at})", inc_rtsp_retrying: "connection lost, retrying at {at} (attempt {attempts})",
    inc_rtsp_stopped: "stopped ({at})", inc_rtsp_connecting: "connecting…", inc_rtsp_stop: "Stop",
    inc_rtsp_stop_confirm: "Stop pulling this camera? What was recorded is kept.", inc_rtsp_none: "No cameras yet",
    inc_footage: "On-scene video", inc_footage_loading: "Loading on-scene video…", inc_footage_none: "No on-scene video yet",
    inc_footage_live: "live", inc_footage_ended: "ended ({at})", inc_footage_play: "Play", inc_footage_download: "Download",
    inc_footage_hashing: "(recording: computed when it ends)", inc_footage_from: "From", inc_footage_to: "to",
    inc_footage_range_download: "Download this range (no re-encoding)", inc_relay_rooms: "Relay to duty rooms",
    inc_relay_leaders: "Relay to leaders", inc_relay_start: "Relay live", inc_relay_stop: "Stop relay",
    inc_relay_live: "Relaying to {to} (watching: {watching})", inc_relay_ended: "Relayed to {to}, stopped {at}",
    inc_relay_end_stopped: "stopped by a host", inc_relay_end_source_ended: "the source ended",
    inc_relay_end_server_stopped: "server stopped", inc_tl_relay_started: "On-scene video \u201c{source}\u201d relayed live to {to}",
    inc_tl_relay_stopped: "Relay of on-scene video stopped ({reason})", inc_tl_relay_watch_joined: "Started watching the relayed video",
    inc_tl_relay_watch_left: "Stopped watching the relayed video ({seconds} s)", inc_footage_access: "Footage access",
    inc_access_at: "When", inc_access_who: "Who", inc_access_action: "Action", inc_access_what: "What", inc_access_address: "Address",
    inc_access_watched_live: "watched live", inc_access_relayed: "relayed", inc_access_played: "played", inc_access_downloaded: "downloaded",
    inc_access_range: "range {from} – {to}", inc_access_segment: "segment #{id}", inc_access_source: "source #{id}",
    relay_heading: "Relayed on-scene video", relay_connecting: "Receiving…", relay_ended: "The relay ended", relay_close: "Close",
    // The command seat and the wall (/command).
    doc_command: "dutycall · Command seat", cmd_title: "Command seat", cmd_open: "Command seat (video and wall)",
    cmd_called: "Calling", cmd_seat_empty: "Click a duty room on the wall below to see its live picture here",
    cmd_mute: "Mute", cmd_unmute: "Unmute", cmd_leave_spot: "End spot-check", cmd_wall: "Wall", cmd_per_page: "Per page",
    cmd_prev: "Previous", cmd_next: "Next", cmd_left: "{s} s left", cmd_age: "{s} s ago", cmd_no_picture: "No picture yet",
    cmd_rooms: "{n} duty rooms", cmd_online: "Online", cmd_spot: "Spot-check", cmd_scope_title: "My duty rooms, live",
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

// -- times in the deployment's zone ---------------------------------------------------------
// Every page shows and reads times in the deployment's zone (the server's --timezone, told in
// the session reply or the field link's), never the browser's: a duty room whose computer is
// set to another zone must still see Beijing time. Until the server has said, the browser's.
let ZONE = "";

function setZone(name) {
  ZONE = "";
  if (!name) return;
  try {
    new Intl.DateTimeFormat("en", { timeZone: name }); // a zone this browser does not know stays unset
    ZONE = name;
  } catch (err) { /* the browser's zone */ }
}

function zoneOption() {
  return ZONE ? { timeZone: ZONE } : {};
}

// A time (an ISO string, a Date or milliseconds) as people read it, in the page's language.
function zonedTime(value, options = { dateStyle: "short", timeStyle: "medium" }) {
  const at = new Date(value);
  if (value === null || value === undefined || value === "" || Number.isNaN(at.getTime())) return "—";
  return at.toLocaleString(LANG === "en" ? "en-GB" : "zh-CN", { hour12: false, ...options, ...zoneOption() });
}

// The deployment's wall clock at an instant: {year, month, day, hour, minute, second, weekday (0 = Monday)}.
function zonedParts(value) {
  const at = new Date(value);
  const parts = {};
  for (const part of new Intl.DateTimeFormat("en-US", { ...zoneOption(), hourCycle: "h23", year: "numeric",
    month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric", weekday: "short" })
    .formatToParts(at)) parts[part.type] = part.value;
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour) % 24,
    minute: Number(parts.minute), second: Number(parts.second),
    weekday: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].indexOf(parts.weekday) };
}

// "YYYY-MM-DD HH:MM" (the deployment's wall clock), as tables and lists show an instant compactly.
function zonedStamp(value) {
  if (value === null || value === undefined || value === "") return "";
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) return "";
  const p = zonedParts(at);
  const two = (n) => String(n).padStart(2, "0");
  return `${p.year}-${two(p.month)}-${two(p.day)} ${two(p.hour)}:${two(p.minute)}`;
}

// The value of a datetime-local input showing an instant on the deployment's wall clock.
function zonedInput(value, seconds = false) {
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) return "";
  const p = zonedParts(at);
  const two = (n) => String(n).padStart(2, "0");
  return `${String(p.year).padStart(4, "0")}-${two(p.month)}-${two(p.day)}T${two(p.hour)}:${two(p.minute)}` +
    (seconds ? `:${two(p.second)}` : "");
}

// A datetime-local value ("2026-12-02T09:30[:15]") read on the deployment's wall clock: the
// instant (a Date), or null. In a gap or overlap of daylight saving, the offset before it.
function fromZonedInput(text) {
  const m = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(text || "");
  if (!m) return null;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] || 0));
  if (Number.isNaN(wall)) return null;
  const offsetAt = (ms) => {
    const p = zonedParts(ms);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
  };
  let at = wall - offsetAt(wall);
  const again = wall - offsetAt(at);
  if (again !== at && offsetAt(again) === wall - again) at = again;
  return new Date(at);
}

// A datetime-local value as ISO 8601 with the deployment's offset at that instant ("...+08:00").
function zonedIso(text) {
  const at = fromZonedInput(text);
  if (!at) return null;
  const p = zonedParts(at);
  const offset = Math.round((Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(at.getTime() / 1000) * 1000) / 60000);
  const two = (n) => String(n).padStart(2, "0");
  const abs = Math.abs(offset);
  return `${zonedInput(at, true)}${offset >= 0 ? "+" : "-"}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}
