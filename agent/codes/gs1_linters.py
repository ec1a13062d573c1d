"""The GS1 Barcode Syntax Tests ("linters"): content checks on one component of an AI's value.

Each linter takes the component's text and returns None when it is fine, or a `Lint`: what is
wrong (the engine's error name, lower case, e.g. `illegal_day`) and where in the component.
They follow the reference implementations in the GS1 Barcode Syntax Engine
(gs1/gs1-syntax-engine @50657dbd04ce, `src/c-lib/syntax/lint_*.c`, Apache License 2.0): the
same order of checks, so the same input gets the same complaint. The code lists (ISO 3166,
ISO 4217, UN/ECE Recommendation 21 package types) are the ones those linters carry.

Two choices where the engine leaves something to the build:
- GS1 Company Prefix lookups (`gcppos1`/`gcppos2`) need GS1's online data; like the engine
  without a lookup, only the prefix's first four digits are checked.
- Two-digit years are placed in a century only to know whether February has 29 days; every
  year 2000-2049 window maps `00` to 2000 (a leap year), so 20YY is used without a clock.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final, NamedTuple


class Lint(NamedTuple):
    """A linter's complaint: the engine's error name and the position in the component."""

    error: str
    position: int = 0


Linter = Callable[[str], Lint | None]

_CSET82: Final = re.compile(r"[!\"%-?A-Z_a-z]*")
_CSET39: Final = re.compile(r"[#\-/0-9A-Z]*")
_CSET64: Final = re.compile(r"[\-0-9A-Z_a-z]*")
_CSET82_ORDER: Final = (
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
_CSET32: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_PRIMES: Final = (
    *(2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83),
    *(89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179),
    *(181, 191, 193, 197, 199, 211, 223, 227, 229, 233, 239, 241, 251, 257, 263, 269, 271, 277),
    *(281, 283, 293, 307, 311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389),
    *(397, 401, 409, 419, 421, 431, 433, 439, 443, 449, 457, 461, 463, 467, 479, 487, 491, 499),
    *(503, 509),
)
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_ISO3166: Final = """
004 008 010 012 016 020 024 028 031 032 036 040 044 048 050 051 052 056 060 064 068 070 072
074 076 084 086 090 092 096 100 104 108 112 116 120 124 132 136 140 144 148 152 156 158 162
166 170 174 175 178 180 184 188 191 192 196 203 204 208 212 214 218 222 226 231 232 233 234
238 239 242 246 248 250 254 258 260 262 266 268 270 275 276 288 292 296 300 304 308 312 316
320 324 328 332 334 336 340 344 348 352 356 360 364 368 372 376 380 384 388 392 398 400 404
408 410 414 417 418 422 426 428 430 434 438 440 442 446 450 454 458 462 466 470 474 478 480
484 492 496 498 499 500 504 508 512 516 520 524 528 531 533 534 535 540 548 554 558 562 566
570 574 578 580 581 583 584 585 586 591 598 600 604 608 612 616 620 624 626 630 634 638 642
643 646 652 654 659 660 662 663 666 670 674 678 682 686 688 690 694 702 703 704 705 706 710
716 724 728 729 732 740 744 748 752 756 760 762 764 768 772 776 780 784 788 792 795 796 798
800 804 807 818 826 831 832 833 834 840 850 854 858 860 862 876 882 887 894
"""

_ISO4217: Final = """
008 012 032 036 044 048 050 051 052 060 064 068 072 084 090 096 104 108 116 124 132 136 144
152 156 170 174 188 192 203 208 214 222 230 232 238 242 262 270 292 320 324 328 332 340 344
348 352 356 360 364 368 376 388 392 396 398 400 404 408 410 414 417 418 422 426 430 434 446
454 458 462 480 484 496 498 504 512 516 524 532 533 548 554 558 566 578 586 590 598 600 604
608 634 643 646 654 682 690 702 704 706 710 728 748 752 756 760 764 776 780 784 788 800 807
818 826 834 840 858 860 882 886 901 924 925 926 927 928 929 930 933 934 936 938 940 941 943
944 946 947 948 949 950 951 952 953 955 956 957 958 959 960 961 962 963 964 965 967 968 969
970 971 972 973 975 976 977 978 979 980 981 984 985 986 990 994 997 999
"""

_ISO3166_ALPHA2: Final = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
ZW
"""

_PACKAGE_TYPES: Final = """
1A 1B 1D 1F 1G 1W 200 201 202 203 204 205 206 210 211 212 2C 3A 3H 43 44 4A 4B 4C 4D 4F 4G
4H 5H 5L 5M 6H 6P 7A 7B 8 8A 8B 8C 9 AA AB AC AD AF AG AH AI AJ AL AM AP APE AT AV B4 BB BC
BD BE BF BG BGE BH BI BJ BK BL BM BME BN BO BP BQ BR BRI BS BT BU BV BW BX BY BZ CA CB CBL
CC CCE CD CE CF CG CH CI CJ CK CL CM CN CO CP CQ CR CS CT CU CV CW CX CY CZ DA DB DC DG DH
DI DJ DK DL DM DN DP DPE DR DS DT DU DV DW DX DY E1 E2 E3 EC ED EE EF EG EH EI EN FB FC FD
FE FI FL FO FOB FP FPE FR FT FW FX GB GI GL GR GU GY GZ HA HB HC HG HN HR IA IB IC ID IE IF
IG IH IK IL IN IZ JB JC JG JR JT JY KG KI LAB LE LG LT LU LV LZ MA MB MC ME MPE MR MS MT MW
MX NA NE NF NG NS NT NU NV OA OB OC OD OE OF OK OPE OT OU P2 PA PAE PB PC PD PE PF PG PH PI
PJ PK PL PLP PN PO POP PP PPE PR PT PU PUE PV PX PY PZ QA QB QC QD QF QG QH QJ QK QL QM QN
QP QQ QR QS RB1 RB2 RB3 RCB RD RG RJ RK RL RO RT RZ S1 SA SB SC SD SE SEC SH SI SK SL SM SO
SP SS ST STL SU SV SW SX SY SZ T1 TB TC TD TE TEV TG THE TI TK TL TN TO TR TRE TS TT TTE TU
TV TW TWE TY TZ UC UN UUE VA VG VI VK VL VN VO VP VQ VR VS VY WA WB WC WD WF WG WH WJ WK WL
WM WN WP WQ WR WRP WS WT WU WV WW WX WY WZ X11 X12 X15 X16 X17 X18 X19 X20 X3 XA XB XC XD XF
XG XH XJ XK YA YB YC YD YF YG YH YJ YK YL YM YN YP YQ YR YS YT YV YW YX YY YZ ZA ZB ZC ZD ZF
ZG ZH ZJ ZK ZL ZM ZN ZP ZQ ZR ZS ZT ZU ZV ZW ZX ZY ZZ
"""


@functools.cache
def _codes(listing: str) -> frozenset[str]:
    """A code list as a set, built the first time a linter needs it."""
    return frozenset(listing.split())


def _first_bad(value: str, allowed: re.Pattern[str]) -> int:
    """Position of the first character outside `allowed` (len(value) if none)."""
    match = allowed.match(value)
    return match.end() if match else 0


def _digits(value: str) -> Lint | None:
    if value.isascii() and value.isdigit():  # the usual case, without a loop in Python
        return None
    for pos, ch in enumerate(value):
        if not "0" <= ch <= "9":
            return Lint("non_digit_character", pos)
    return None


def cset_numeric(value: str) -> Lint | None:
    """Digits only."""
    return _digits(value)


def cset82(value: str) -> Lint | None:
    """GS1 AI encodable character set 82."""
    pos = _first_bad(value, _CSET82)
    return Lint("invalid_cset82_character", pos) if pos < len(value) else None


def cset39(value: str) -> Lint | None:
    """GS1 AI encodable character set 39 (upper case, digits, `#-/`)."""
    pos = _first_bad(value, _CSET39)
    return Lint("invalid_cset39_character", pos) if pos < len(value) else None


def cset64(value: str) -> Lint | None:
    """GS1 file-safe base64 (`A-Za-z0-9-_`) with up to two `=` pads on a multiple of three."""
    body = value.rstrip("=")
    pads = len(value) - len(body)
    if pads > 2 or (pads and len(value) % 3):
        return Lint("invalid_cset64_padding", len(body))
    pos = _first_bad(body, _CSET64)
    return Lint("invalid_cset64_character", pos) if pos < len(body) else None


def csum(value: str) -> Lint | None:
    """GS1 mod-10 check digit (GTIN, SSCC, GLN, ...) in the last position."""
    if not value:
        return Lint("too_short_for_check_digit")
    bad = _digits(value)
    if bad:
        return bad
    # Weights 3, 1, 3, ... from the right, the check digit itself excluded (7.9.1).
    total = 3 * sum(map(int, value[-2::-2])) + sum(map(int, value[-3::-2]))
    if (10 - total % 10) % 10 != int(value[-1]):
        return Lint("incorrect_check_digit", len(value) - 1)
    return None


def csumalpha(value: str) -> Lint | None:
    """GS1 check character pair over CSET 82 data (GMN, MUDI): the last two characters."""
    if len(value) > len(_PRIMES) + 2:
        return Lint("too_long_for_check_pair_implementation")
    if len(value) < 2:
        return Lint("too_short_for_check_pair")
    total = 0
    body = value[:-2]
    for pos, ch in enumerate(body):
        weight = _CSET82_ORDER.find(ch)
        if weight < 0:
            return Lint("invalid_cset82_character", pos)
        total += weight * _PRIMES[len(body) - 1 - pos]
    total %= 1021
    if value[-2:] != _CSET32[total >> 5] + _CSET32[total & 31]:
        return Lint("incorrect_check_pair", len(value) - 2)
    return None


def gcppos1(value: str) -> Lint | None:
    """A GS1 Company Prefix starts here: at least its first four characters are digits."""
    if len(value) < 4:
        return Lint("too_short_for_gcp")
    for pos in range(4):
        if not "0" <= value[pos] <= "9":
            return Lint("invalid_gcp_prefix", pos)
    return None


def gcppos2(value: str) -> Lint | None:
    """A GS1 Company Prefix starts at the second character (after an indicator digit)."""
    if len(value) < 2:
        return Lint("too_short_for_gcp")
    bad = gcppos1(value[1:])
    return Lint(bad.error, bad.position + 1) if bad else None


def yyyymmd0(value: str) -> Lint | None:
    """YYYYMMDD where DD may be 00 (the month as a whole)."""
    if len(value) != 8:
        return Lint("date_too_short" if len(value) < 8 else "date_too_long")
    bad = _digits(value)
    if bad:
        return bad
    year, month, day = int(value[:4]), int(value[4:6]), int(value[6:])
    if not 1 <= month <= 12:
        return Lint("illegal_month", 4)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    last = 28 + leap if month == 2 else _DAYS_IN_MONTH[month - 1]
    return Lint("illegal_day", 6) if day > last else None


def yyyymmdd(value: str) -> Lint | None:
    """YYYYMMDD, a real calendar day."""
    bad = yyyymmd0(value)
    if bad:
        return bad
    return Lint("illegal_day", 6) if value[6:] == "00" else None


def yymmd0(value: str) -> Lint | None:
    """YYMMDD where DD may be 00 (GS1 General Specifications 7.12: the last day of the month)."""
    if len(value) != 6:
        return Lint("date_too_short" if len(value) < 6 else "date_too_long")
    bad = yyyymmd0("20" + value)
    return Lint(bad.error, max(bad.position - 2, 0)) if bad else None


def yymmdd(value: str) -> Lint | None:
    """YYMMDD, a real calendar day."""
    bad = yymmd0(value)
    if bad:
        return bad
    return Lint("illegal_day", 4) if value[4:] == "00" else None


def _two_digits(value: str, short: str, long: str, illegal: str, top: int) -> Lint | None:
    if len(value) != 2:
        return Lint(short if len(value) < 2 else long)
    bad = _digits(value)
    if bad:
        return bad
    return Lint(illegal) if int(value) > top else None


def hh(value: str) -> Lint | None:
    """An hour, 00-23."""
    return _two_digits(value, "hour_too_short", "hour_too_long", "illegal_hour", 23)


def mi(value: str) -> Lint | None:
    """A minute, 00-59."""
    return _two_digits(value, "minute_too_short", "minute_too_long", "illegal_minute", 59)


def ss(value: str) -> Lint | None:
    """A second, 00-59."""
    return _two_digits(value, "second_too_short", "second_too_long", "illegal_second", 59)


def hhmi(value: str) -> Lint | None:
    """HHMI, hour and minute."""
    if len(value) != 4:
        short = len(value) < 4
        return Lint("hour_with_minute_too_short" if short else "hour_with_minute_too_long")
    bad = hh(value[:2])
    if bad:
        return bad
    bad = mi(value[2:])
    return Lint(bad.error, bad.position + 2) if bad else None


def _in_list(value: str, listing: str, error: str) -> Lint | None:
    return None if value in _codes(listing) else Lint(error)


def iso3166(value: str) -> Lint | None:
    """An ISO 3166-1 numeric country code."""
    return _in_list(value, _ISO3166, "not_iso3166")


def iso3166999(value: str) -> Lint | None:
    """An ISO 3166-1 numeric country code, or 999."""
    if value == "999" or value in _codes(_ISO3166):
        return None
    return Lint("not_iso3166_or_999")


def iso3166alpha2(value: str) -> Lint | None:
    """An ISO 3166-1 alpha-2 country code."""
    return _in_list(value, _ISO3166_ALPHA2, "not_iso3166_alpha2")


def iso4217(value: str) -> Lint | None:
    """An ISO 4217 numeric currency code."""
    return _in_list(value, _ISO4217, "not_iso4217")


def packagetype(value: str) -> Lint | None:
    """A package type code (UN/ECE Recommendation 21)."""
    return _in_list(value, _PACKAGE_TYPES, "invalid_package_type")


def mediatype(value: str) -> Lint | None:
    """An AIDC media type: 01-10 or 80-99."""
    ok = len(value) == 2 and _digits(value) is None and (1 <= int(value) <= 10 or int(value) >= 80)
    return None if ok else Lint("invalid_media_type")


def iban(value: str) -> Lint | None:
    """An IBAN: country code, length and the ISO 7064 mod 97-10 check digits."""
    if len(value) < 4:
        return Lint("iban_too_short")
    if iso3166alpha2(value[:2]):
        return Lint("illegal_iban_country_code")
    if len(value) > 34:
        return Lint("iban_too_long")
    if len(value) <= 10:
        return Lint("iban_too_short")
    rest = 0
    for pos in (*range(4, len(value)), *range(4)):
        ch = value[pos]
        if "0" <= ch <= "9":
            rest = (rest * 10 + int(ch)) % 97
        elif "A" <= ch <= "Z":
            rest = (rest * 100 + ord(ch) - 55) % 97
        else:
            return Lint("invalid_iban_character", pos)
    return None if rest == 1 else Lint("incorrect_iban_checksum", 2)


def importeridx(value: str) -> Lint | None:
    """An importer index: one character of `-0-9A-Z_a-z`."""
    if len(value) != 1:
        return Lint("importer_idx_must_be_one_character")
    return None if _CSET64.fullmatch(value) else Lint("invalid_import_idx_character")


def nonzero(value: str) -> Lint | None:
    """Digits, not all zero."""
    bad = _digits(value)
    if bad:
        return bad
    return None if value.strip("0") else Lint("illegal_zero_value")


def zero(value: str) -> Lint | None:
    """Only zeros."""
    return None if value and not value.strip("0") else Lint("not_zero")


def nozeroprefix(value: str) -> Lint | None:
    """Digits with no leading zero; a lone "0" is a number like any other.

    GS1 General Specifications (Release 26.0, 3.9.11, AI 8011): the serial "SHALL NOT begin
    with a 0 digit, unless the entire serial number consists of the single digit 0". The
    engine @50657dbd04ce refuses the lone "0" too; the standard's text is followed here.
    """
    if value.startswith("0") and value != "0":
        return Lint("illegal_zero_prefix")
    return _digits(value)


def yesno(value: str) -> Lint | None:
    """A flag, 0 or 1."""
    return None if value in ("0", "1") else Lint("not_zero_or_one")


def winding(value: str) -> Lint | None:
    """Winding direction: 0, 1 or 9."""
    return None if value in ("0", "1", "9") else Lint("invalid_winding_direction")


def iso5218(value: str) -> Lint | None:
    """Biological sex code (ISO/IEC 5218): 0, 1, 2 or 9."""
    return None if value in ("0", "1", "2", "9") else Lint("invalid_biological_sex_code")


def hyphen(value: str) -> Lint | None:
    """Only hyphens."""
    return None if value and not value.strip("-") else Lint("not_hyphen")


def hasnondigit(value: str) -> Lint | None:
    """At least one character that is not a digit."""
    return (
        None if not value.isdigit() or not value.isascii() else Lint("requires_non_digit_character")
    )


def pcenc(value: str) -> Lint | None:
    """Percent-encoding: every `%` starts a `%hh` sequence."""
    pos = value.find("%")
    while pos >= 0:
        hexa = value[pos + 1 : pos + 3]
        if (
            len(hexa) < 2
            or pos + 2 >= len(value)
            or not all(c in "0123456789abcdefABCDEF" for c in hexa)
        ):
            return Lint("invalid_percent_sequence", pos)
        pos = value.find("%", pos + 3)
    return None


def latitude(value: str) -> Lint | None:
    """Ten digits, at most 1800000000."""
    if len(value) != 10:
        return Lint("latitude_invalid_length")
    return _digits(value) or (Lint("invalid_latitude") if int(value) > 1800000000 else None)


def longitude(value: str) -> Lint | None:
    """Ten digits, at most 3600000000."""
    if len(value) != 10:
        return Lint("longitude_invalid_length")
    return _digits(value) or (Lint("invalid_longitude") if int(value) > 3600000000 else None)


def pieceoftotal(value: str) -> Lint | None:
    """Piece number then total, equal lengths, neither zero, piece not above total."""
    bad = _digits(value)
    if bad:
        return bad
    if not value or len(value) % 2:
        return Lint("invalid_length_for_piece_of_total")
    half = len(value) // 2
    piece, total = value[:half], value[half:]
    if not piece.strip("0"):
        return Lint("zero_piece_number")
    if not total.strip("0"):
        return Lint("zero_total_pieces", half)
    return Lint("piece_number_exceeds_total") if piece > total else None


def posinseqslash(value: str) -> Lint | None:
    """`<position>/<end>`: digits, no leading zeros, position not above end."""
    position, slash, end = value.partition("/")
    if not (
        slash and position.isdigit() and end.isdigit() and position.isascii() and end.isascii()
    ):
        return Lint("position_in_sequence_malformed")
    if position[0] == "0":
        return Lint("illegal_zero_prefix")
    if end[0] == "0":
        return Lint("illegal_zero_prefix", len(position) + 1)
    if (len(position), position) > (len(end), end):
        return Lint("position_exceeds_end")
    return None


class _Coupon:
    """A cursor over a North American coupon code's digits (GS1 AI 8110 / 8112)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.value)

    def peek(self) -> str:
        return self.value[self.pos]

    def digit(self, missing: str, allowed: str | None, invalid: str) -> int | Lint:
        """One digit from `allowed`; the error names say what is missing or invalid."""
        if not self.more():
            return Lint(f"coupon_missing_{missing}")
        ch = self.peek()
        if allowed is not None and ch not in allowed:
            return Lint(f"coupon_invalid_{invalid}", self.pos)
        self.pos += 1
        return int(ch)

    def take(self, count: int, truncated: str) -> str | Lint:
        """The next `count` digits."""
        if len(self.value) - self.pos < count:
            return Lint(f"coupon_truncated_{truncated}", self.pos)
        text = self.value[self.pos : self.pos + count]
        self.pos += count
        return text


def _coupon_gcp(coupon: _Coupon, count: int, truncated: str) -> Lint | None:
    gcp = coupon.take(count, truncated)
    if isinstance(gcp, Lint):
        return gcp
    bad = gcppos1(gcp)
    return Lint(bad.error, coupon.pos - count) if bad else None


def _coupon_purchase(coupon: _Coupon, which: str, gcp: bool) -> Lint | None:
    """A purchase requirement: VLI + value, requirement code, family code (+ GCP)."""
    vli = coupon.digit(
        f"{which}_purchase_requirement_vli", "12345", f"{which}_purchase_requirement_length"
    )
    if isinstance(vli, Lint):
        return vli
    for step in (
        coupon.take(vli, f"{which}_purchase_requirement"),
        coupon.digit(
            f"{which}_purchase_requirement_code", "012349", f"{which}_purchase_requirement_code"
        ),
        coupon.take(3, f"{which}_purchase_family_code"),
    ):
        if isinstance(step, Lint):
            return step
    if not gcp:
        return None
    vli = coupon.digit(f"{which}_purchase_gcp_vli", "01234569", f"{which}_purchase_gcp_length")
    if isinstance(vli, Lint):
        return vli
    return _coupon_gcp(coupon, vli + 6, f"{which}_purchase_gcp") if vli != 9 else None


def couponcode(value: str) -> Lint | None:
    """North American coupon code (AI 8110), per the GS1 US coupon data structure."""
    bad = _digits(value)
    if bad:
        return bad
    coupon = _Coupon(value)
    vli = coupon.digit("gcp_vli", "0123456", "gcp_length")
    if isinstance(vli, Lint):
        return vli
    steps: list[Callable[[], object]] = [
        lambda: _coupon_gcp(coupon, vli + 6, "gcp"),
        lambda: coupon.take(6, "offer_code"),
    ]
    for step in steps:
        result = step()
        if isinstance(result, Lint):
            return result
    save = coupon.digit("save_value_vli", "12345", "save_value_length")
    if isinstance(save, Lint):
        return save
    taken = coupon.take(save, "save_value")
    if isinstance(taken, Lint):
        return taken
    bad = _coupon_purchase(coupon, "1st", gcp=False)
    if bad:
        return bad
    if coupon.more() and coupon.peek() == "1":
        coupon.pos += 1
        rules = coupon.digit(
            "additional_purchase_rules_code", "0123", "additional_purchase_rules_code"
        )
        if isinstance(rules, Lint):
            return rules
        bad = _coupon_purchase(coupon, "2nd", gcp=True)
        if bad:
            return bad
    if coupon.more() and coupon.peek() == "2":
        coupon.pos += 1
        bad = _coupon_purchase(coupon, "3rd", gcp=True)
        if bad:
            return bad
    expiry: str | None = None
    if coupon.more() and coupon.peek() == "3":
        coupon.pos += 1
        start = coupon.pos
        date = coupon.take(6, "")
        if isinstance(date, Lint):
            return Lint("coupon_too_short_for_expiration_date", start)
        if yymmdd(date):
            return Lint("coupon_invalid_expiration_date", start)
        expiry = date
    if coupon.more() and coupon.peek() == "4":
        coupon.pos += 1
        start = coupon.pos
        date = coupon.take(6, "")
        if isinstance(date, Lint):
            return Lint("coupon_too_short_for_start_date", start)
        if yymmdd(date):
            return Lint("coupon_invalid_start_date", start)
        if expiry is not None and date > expiry:
            return Lint("coupon_expiration_before_start", start - 8)
    if coupon.more() and coupon.peek() == "5":
        coupon.pos += 1
        serial = coupon.digit("serial_number_vli", None, "")
        if isinstance(serial, Lint):
            return serial
        taken = coupon.take(serial + 6, "serial_number")
        if isinstance(taken, Lint):
            return taken
    if coupon.more() and coupon.peek() == "6":
        coupon.pos += 1
        retailer = coupon.digit("retailer_gcp_or_gln_vli", "1234567", "retailer_gcp_or_gln_length")
        if isinstance(retailer, Lint):
            return retailer
        bad = _coupon_gcp(coupon, retailer + 6, "retailer_gcp_or_gln")
        if bad:
            return bad
    if coupon.more() and coupon.peek() == "9":
        coupon.pos += 1
        for missing, allowed, invalid in (
            ("save_value_code", "01256", "save_value_code"),
            ("save_value_applies_to_item", "012", "save_value_applies_to_item"),
            ("store_coupon_flag", None, ""),
            ("dont_multiply_flag", "01", "dont_multiply_flag"),
        ):
            flag = coupon.digit(missing, allowed, invalid)
            if isinstance(flag, Lint):
                return flag
    return Lint("coupon_excess_data", coupon.pos) if coupon.more() else None


def couponposoffer(value: str) -> Lint | None:
    """Positive offer file coupon code (AI 8112)."""
    bad = _digits(value)
    if bad:
        return bad
    coupon = _Coupon(value)
    fmt = coupon.digit("format_code", "01", "format_code")
    if isinstance(fmt, Lint):
        return fmt
    funder = coupon.digit("funder_vli", "0123456", "funder_length")
    if isinstance(funder, Lint):
        return funder
    for step in (coupon.take(funder + 6, "funder"), coupon.take(6, "offer_code")):
        if isinstance(step, Lint):
            return step
    serial = coupon.digit("serial_number_vli", None, "")
    if isinstance(serial, Lint):
        return serial
    taken = coupon.take(serial + 6, "serial_number")
    if isinstance(taken, Lint):
        return taken
    return Lint("coupon_excess_data", coupon.pos) if coupon.more() else None


#: The character-set linter each component type starts with.
CSET_LINTERS: Final[dict[str, Linter]] = {
    "N": cset_numeric,
    "X": cset82,
    "Y": cset39,
    "Z": cset64,
}

#: Every linter the dictionary names. Retired names the engine keeps as no-op stubs
#: (`key`, `hhmm`, ...) are not used by the dictionary and so not listed.
LINTERS: Final[dict[str, Linter]] = {
    f.__name__: f
    for f in (
        csum, csumalpha, gcppos1, gcppos2, yyyymmd0, yyyymmdd, yymmd0, yymmdd, hh, mi, ss,
        hhmi, iso3166, iso3166999, iso3166alpha2, iso4217, packagetype, mediatype, iban,
        importeridx, nonzero, zero, nozeroprefix, yesno, winding, iso5218, hyphen,
        hasnondigit, pcenc, latitude, longitude, pieceoftotal, posinseqslash, couponcode,
        couponposoffer,
    )
}  # fmt: skip

#: Linters whose component is a date or a time: any fault there is a `bad_date`.
DATE_LINTERS: Final = frozenset(
    {"yyyymmd0", "yyyymmdd", "yymmd0", "yymmdd", "hh", "mi", "ss", "hhmi"}
)
