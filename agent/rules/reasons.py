"""Why a scan is refused: the stable reason codes, and what the worker is told for each, in
Chinese and English.
"""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

from agent.codes.model import RecognitionReason

#: The reasons recognition and the level/expiry guard give: stateless ones (`tracescan check`).
StatelessReason = RecognitionReason | Literal["expired", "level_not_allowed"]
#: SPEC.md's stable reason codes (never renamed), with recognition's `bad_value` and
#: `unsupported_format` (SPEC: more may be added).
SpecReason = (
    StatelessReason
    | Literal["duplicate_scan", "already_recorded", "blocked", "not_in_manifest", "buffer_full"]
)
#: Every reason a refusal can carry: SPEC's, and the agent's own stateful ones.
Reason = SpecReason | Literal["state_conflict", "no_aggregation", "awaiting_ack"]

STATELESS_REASONS: Final[tuple[str, ...]] = tuple(
    r for part in get_args(StatelessReason) for r in get_args(part)
)
SPEC_REASONS: Final[tuple[str, ...]] = tuple(
    r for part in get_args(SpecReason) for r in get_args(part)
)
REASONS: Final[tuple[str, ...]] = tuple(r for part in get_args(Reason) for r in get_args(part))


def is_reason(value: object) -> TypeGuard[Reason]:
    """True for a reason code this agent knows (SPEC's or its own)."""
    return isinstance(value, str) and value in REASONS


#: reason -> (zh, en). Every stable SPEC reason has both languages. A key `reason.variant`
#: is a more specific sentence for the same reason (e.g. the 69… commodity barcode).
MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "accepted": ("有效的追溯码", "Valid trace code"),
    "empty": ("未读到内容，请重新扫描", "Nothing was read: scan again"),
    "bad_charset": (
        "读到的内容含有非法字符，请重新扫描",
        "The scan contains invalid characters: scan again",
    ),
    "bad_length": (
        "码的长度不对（追溯码为20位），请重新扫描",
        "Wrong length (a trace code has 20 digits): scan again",
    ),
    "bad_check_digit": (
        "校验位错误，码可能读错或被篡改",
        "Check digit is wrong: misread or altered code",
    ),
    "bad_date": ("码中的日期无效", "The date in the code is invalid"),
    "gs1_structure": (
        "GS1码结构不完整（缺少GTIN或序列号），请扫描药盒上带序列号的追溯码",
        "Incomplete GS1 code (no GTIN or no serial): scan the pack's code that has a serial number",
    ),
    "gs1_structure.no_serial": (
        "这是产品码而不是单品追溯码（缺少序列号），请扫描带序列号的码",
        "This identifies a product, not a pack (no serial): scan the code with a serial number",
    ),
    "gs1_structure.separator_lost": (
        "码中的分隔符(GS)丢失，无法区分批号和序列号；请让管理员开启扫描枪的GS(FNC1)输出",
        "The code's GS separators were lost, so batch and serial cannot be told apart: "
        "have the scanner set to transmit GS (FNC1)",
    ),
    "bad_value": (
        "码中某个字段的取值不符合GS1规定（如国家、币种或包装类型代码无效），码可能印错",
        "A field of the code holds a value its standard does not allow (e.g. an unknown "
        "country, currency or package type code): misprinted code",
    ),
    "bad_length.gs1": (
        "GS1码中某个字段的长度不对，码可能读错或印错",
        "A field of the GS1 code has the wrong length: misread or misprinted code",
    ),
    "bad_charset.gs1": (
        "GS1码中某个字段含有GS1不允许的字符，码可能读错或印错",
        "A field of the GS1 code holds characters GS1 does not allow: misread or misprinted code",
    ),
    "gs1_structure.no_gtin": (
        "GS1码中没有GTIN(01)，不是药盒上的追溯码；请扫描带GTIN和序列号的码",
        "The GS1 code has no GTIN (01), so it is no pack's code: scan the code with a GTIN "
        "and a serial number",
    ),
    "gs1_structure.unknown_ai": (
        "GS1码中含有未知的应用标识符(AI)，码可能读错或印错",
        "The GS1 code holds an unknown application identifier (AI): misread or misprinted code",
    ),
    "gs1_structure.ai_pairing": (
        "GS1码中含有不能同时出现的字段，或同一字段出现两次且取值不同",
        "The GS1 code holds fields GS1 does not allow together, or one field twice with "
        "different values",
    ),
    "gs1_structure.malformed": (
        "GS1码的写法不正确（括号中应为应用标识符），请重新扫描或核对输入",
        "The GS1 code is not well formed (each pair of brackets holds an application "
        "identifier): scan again or check the input",
    ),
    "unsupported_format": (
        "这种码的格式本系统不受理，请扫描药品追溯码",
        "This code's format is not accepted here: scan the drug's trace code",
    ),
    "unsupported_format.iso15434": (
        "这是ISO/IEC 15434格式的码（如欧洲药品的PPN/IFA码），本系统不受理；请扫描药品追溯码",
        "This is an ISO/IEC 15434 code (e.g. a European pharmacy PPN/IFA code), a format not "
        "accepted here: scan the drug's trace code",
    ),
    "commodity_barcode": (
        "这是商品条码，不是追溯码，请扫描药盒上的追溯码",
        "This is a product barcode, not the trace code: scan the pack's 追溯码",
    ),
    "commodity_barcode.69": (
        "这是商品条码（69开头），不是追溯码，请扫描旁边的追溯码",
        "This is the product barcode (69…), not the trace code: scan the 追溯码 printed beside it",
    ),
    "unknown_format": (
        "无法识别的码，请扫描药品追溯码",
        "Not a recognised trace code: scan the drug's trace code",
    ),
    "expired": (
        "药品已过期，不能发药/销售",
        "This pack has expired: it cannot be dispensed or sold",
    ),
    "level_not_allowed": (
        "这是中包装/大包装码，发药/销售时请扫描最小包装上的追溯码",
        "This is a middle-pack/case code: at dispensing or sale scan the unit pack's code",
    ),
    "duplicate_scan": ("重复扫描，已忽略", "Double read ignored"),
    "already_recorded": (
        "此追溯码已在本操作中记录过",
        "This code was already recorded for this operation",
    ),
    "already_recorded.resale": (
        "此追溯码已被销售/发药过（疑似回流药），请核对后确认",
        "This code was already sold or dispensed (possible returned-to-market pack): "
        "check and acknowledge",
    ),
    "state_conflict": (
        "此药品的流向记录与本操作矛盾（例如已销毁或已出库），请核对",
        "This pack's recorded history contradicts this operation (e.g. destroyed or "
        "dispatched): check it",
    ),
    "no_aggregation": (
        "没有此箱/中包装的关联数据，请逐盒扫描最小包装",
        "No packing data for this case/middle pack: scan every unit pack",
    ),
    "no_aggregation.too_large": (
        "此箱的关联数据超出允许的最小包装数，请逐盒扫描最小包装",
        "This case's packing data holds more units than allowed: scan every unit pack",
    ),
    "awaiting_ack": (
        "上一条警告尚未确认，请先扫描“确认警告”码",
        "The previous alert is not acknowledged yet: scan the 'Acknowledge alert' code first",
    ),
    "blocked": ("此药品已被召回或禁止流通", "This pack is recalled or blocked"),
    "not_in_manifest": (
        "此码不在供货方的发货数据中",
        "This code is not in the supplier's dispatch data",
    ),
    "buffer_full": (
        "本地存储已满，扫描未记录！请联系管理员",
        "Local storage is full: the scan was NOT recorded. Call the administrator",
    ),
}


def message(reason: Reason | None, lang: str = "zh", variant: str | None = None) -> str:
    """The worker-facing sentence for a reason (None means accepted), in `zh` or `en`.

    >>> message("commodity_barcode", "en", "69")
    'This is the product barcode (69…), not the trace code: scan the 追溯码 printed beside it'
    """
    key = reason or "accepted"
    pair = (variant and MESSAGES.get(f"{key}.{variant}")) or MESSAGES.get(key)
    zh, en = pair or MESSAGES["unknown_format"]
    return en if lang == "en" else zh
