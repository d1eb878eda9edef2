// The mouse, where the terminal reports it: the console turns on SGR mouse reporting (xterm's modes 1000 and 1006)
// while it runs and off when it quits, and reads the wheel and left clicks from what Ink passes as input. Pure.

/** Turns reporting on (button presses and the wheel, in SGR's decimal form) / off again. */
export const MOUSE_ON = "\x1b[?1000h\x1b[?1006h";
export const MOUSE_OFF = "\x1b[?1006l\x1b[?1000l";

export type MouseEvent =
  | { kind: "wheel.up" | "wheel.down" }
  /** A left click on the screen's `line` (0: the first). */
  | { kind: "click"; line: number };

/**
 * The mouse event in `input` (an SGR report, "ESC [ < button ; column ; line M", as Ink hands it over, with or
 * without its ESC); null when it is none; { kind: "ignored" } for a report the console has no use for (a release,
 * another button).
 */
export function parseMouse(input: string): MouseEvent | { kind: "ignored" } | null {
  const m = /^\x1b?\[<(\d+);(\d+);(\d+)([Mm])$/.exec(input);
  if (!m) return null;
  const button = Number(m[1]);
  if (m[4] === "M" && button === 64) return { kind: "wheel.up" };
  if (m[4] === "M" && button === 65) return { kind: "wheel.down" };
  if (m[4] === "M" && button === 0) return { kind: "click", line: Number(m[3]) - 1 };
  return { kind: "ignored" };
}
