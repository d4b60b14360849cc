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
  document.dispatchEvent(new Event("languagechange"));
}

function setLanguage(lang) {
  LANG = lang;
  localStorage.setItem("dutycall.lang", lang);
  applyLanguage();
}
