"""`tracescan calibrate`: learn a keyboard-wedge scanner's layout from one scan.

A wedge scanner types keys as if on a keyboard of its configured layout; for a layout that is
not built in (`us uk de fr`), print the calibration barcode (`calibrate barcode`), scan it
once with the scanner while `calibrate learn` listens, and set `layout = "calibrated"` and
`keymap_file` in its `[[scanner]]` table. The barcode is drawn like the command sheet (whole
pixels per module, 300 dpi, A4 landscape so its 94 characters fit at 0.25 mm a module).
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Final

from agent.cli.sheet import (
    DPI,
    FONT_PACKAGE,
    MARGIN,
    QUIET_MODULES,
    code128_modules,
    draw_code128,
    find_font,
    save_pages,
)
from agent.cli.station import (
    EX_CANTCREAT,
    EX_NOINPUT,
    EX_UNAVAILABLE,
    EX_USAGE,
    CommandError,
    add_command,
    output_path,
)

A4_LANDSCAPE: Final = (3508, 2480)  # pixels at 300 dpi
MODULE_PX: Final = 3  # 0.25 mm: the widest whole-pixel module that fits the page
BAR_HEIGHT: Final = 360  # 30 mm: easy to hit with the aiming line
EX_NO_SCAN: Final = 1
INSTRUCTIONS: Final = (
    "tracescan calibration barcode: scan it once while `tracescan calibrate learn DEVICE "
    "keymap.json` waits,",
    'then set layout = "calibrated" and keymap_file = "keymap.json" in the scanner\'s '
    "[[scanner]] table. Print at 100 %.",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan calibrate barcode` and `tracescan calibrate learn`."""
    p = add_command(
        sub,
        "calibrate",
        summary="learn a keyboard-wedge scanner's layout from one scan of a printed barcode",
        description=(
            "barcode OUT    prints the calibration barcode (Code 128 holding every character a\n"
            "               code can contain) as PNG or PDF, A4 landscape, 300 dpi.\n"
            "learn DEVICE OUT.json\n"
            "               grabs the scanner, waits for one scan of that barcode and writes\n"
            '               the learnt keymap; then set layout = "calibrated" and\n'
            "               keymap_file = OUT.json in the scanner's [[scanner]] table.\n"
            "DEVICE is an event device path, a /dev/input/by-id name or vvvv:pppp (USB id)."
        ),
        exits=[
            (0, "barcode written / keymap learnt and written"),
            (EX_NO_SCAN, "learn: no clean calibration scan arrived (scan it again)"),
            (EX_USAGE, "usage error (e.g. OUT's folder is missing)"),
            (EX_NOINPUT, "learn: the device is missing, not an input device, busy or forbidden"),
            (EX_UNAVAILABLE, f"barcode: no font for the instructions (install {FONT_PACKAGE})"),
            (EX_CANTCREAT, "OUT cannot be written"),
        ],
        examples=[
            "tracescan calibrate barcode calibration.pdf",
            "tracescan calibrate learn usb-Honeywell_Scanner-event-kbd keymap.json",
        ],
    )
    what = p.add_subparsers(
        dest="what", required=True, metavar="{barcode,learn}", help="print or learn"
    )
    barcode = what.add_parser("barcode", help="print the calibration barcode (PNG or PDF)")
    barcode.add_argument(
        "out", type=output_path(".png", ".pdf"), metavar="OUT", help="the PNG or PDF to write"
    )
    barcode.set_defaults(func=print_barcode)
    learn = what.add_parser("learn", help="learn the layout from one scan of the barcode")
    learn.add_argument(
        "device", help="event device path, /dev/input/by-id name, or vvvv:pppp (hex USB id)"
    )
    learn.add_argument(
        "out", type=output_path(".json"), metavar="OUT.json", help="where to write the keymap"
    )
    learn.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the scan (default: 60)",
    )
    learn.set_defaults(func=learn_layout)


def print_barcode(args: argparse.Namespace) -> int:
    """Write the calibration barcode page."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 - only printing needs Pillow

    from drivers.keymap import CALIBRATION_TEXT  # noqa: PLC0415

    font = ImageFont.truetype(str(find_font(INSTRUCTIONS, 40)), 40)
    page = Image.new("L", A4_LANDSCAPE, 255)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(INSTRUCTIONS):
        draw.text((MARGIN, MARGIN + i * 60), line, fill=0, font=font)
    width = (len(code128_modules(CALIBRATION_TEXT)) + 2 * QUIET_MODULES) * MODULE_PX
    x = (A4_LANDSCAPE[0] - width) // 2
    y = (A4_LANDSCAPE[1] - BAR_HEIGHT) // 2
    draw_code128(draw, CALIBRATION_TEXT, x, y, module=MODULE_PX, height=BAR_HEIGHT)
    save_pages([page], args.out)
    print(f"{args.out}: the calibration barcode at {DPI} dpi (A4 landscape)")
    return 0


def learn_layout(args: argparse.Namespace) -> int:
    """Wait for one calibration scan from DEVICE and write the learnt keymap."""
    from drivers.hid import DeviceNotFound, calibrate  # noqa: PLC0415 - evdev only here
    from drivers.keymap import CALIBRATION_TEXT, KeymapError  # noqa: PLC0415

    device: str = args.device
    print(
        f"scan the calibration barcode now (`tracescan calibrate barcode`); it reads:\n"
        f"{CALIBRATION_TEXT}",
        flush=True,
    )
    try:
        keymap = calibrate(device, args.out, timeout=args.timeout)
    except DeviceNotFound as exc:
        raise CommandError(
            f"{exc}: plug the scanner in, or name it by path, by its /dev/input/by-id name "
            "(ls /dev/input/by-id) or by vvvv:pppp",
            EX_NOINPUT,
        ) from exc
    except TimeoutError as exc:
        raise CommandError(f"{exc}: scan the calibration barcode again", EX_NO_SCAN) from exc
    except KeymapError as exc:
        raise CommandError(str(exc), EX_NO_SCAN) from exc
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename) == args.out:
            raise CommandError(f"cannot write {args.out} ({exc.strerror})", EX_CANTCREAT) from exc
        raise CommandError(f"cannot read {device}: {_why(exc)}", EX_NOINPUT) from exc
    print(f"learnt {len(keymap.table)} keys; wrote {args.out}", file=sys.stdout)
    return 0


def _why(exc: OSError) -> str:
    """What to do about a device that exists but cannot be read."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied: run as root or add the user to group input"
    if exc.errno == errno.EBUSY:
        return "another program has grabbed it (is the agent running? stop it first)"
    if exc.errno in (errno.ENOTTY, errno.EINVAL):
        return "it is not an input device (give the scanner's event device)"
    return exc.strerror or str(exc)
