"""The supervision package's user-visible messages, registered into the one catalogue."""

from __future__ import annotations

from ..messages import CATALOGUE, EN, ZH


def _m(zh: str, en: str) -> dict[str, str]:
    return {ZH: zh, EN: en}


MESSAGES: dict[str, dict[str, str]] = {
    "supervision.not_found": _m("没有编号为 {id} 的督办通知，或不在您的管辖范围内", "No notice {id} in your scope"),
    "supervision.response_text": _m("办理情况应为 1 至 {max} 个字符的文字，不含控制字符",
                                    "The response must be text of 1 to {max} characters, no control characters"),
    "supervision.respond_own_unit": _m("只有被督办单位本级的人员可以回复",
                                       "Only the notified unit's own people may respond"),
    "supervision.closed": _m("该督办通知已办结", "This notice is closed"),
    "supervision.close_issuer_only": _m("只有督办方的主持人可以办结，被督办单位不能办结自己的通知",
                                        "Only a host of the issuing side closes a notice; "
                                        "the notified unit cannot close its own"),
    "supervision.close_after_response": _m("被督办单位回复后才能办结",
                                           "A notice is closed after the unit has responded"),
}

CATALOGUE.update(MESSAGES)
