// Colour or not: NO_COLOR (set and not empty, no-color.org) and FORCE_COLOR=0 (or false) turn the console's colours
// off. Not its attributes: the selected row stays in reverse video, marked rows bold and underlined, so the screen
// still says where the cursor is. (Ink's chalk would drop reverse video along with the colours at FORCE_COLOR=0,
// and does not read NO_COLOR at all: the console keeps chalk at its basic level and draws without colours itself.)
import type { Theme } from "./config.ts";

export function colorsOff(env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return true;
  return env.FORCE_COLOR === "0" || env.FORCE_COLOR === "false";
}

/** Every colour of the theme off (Ink draws text in the terminal's own colour where a colour is undefined). */
export const MONOCHROME: Theme = {
  title: undefined,
  good: undefined,
  bad: undefined,
  warn: undefined,
  marked: undefined,
  readonly: undefined,
  filter: undefined,
  question: undefined,
  error: undefined,
  message: undefined,
};

/**
 * Before Ink (and its chalk) is loaded: with colours off, chalk still at its basic level, so that reverse video,
 * bold and underline are drawn (the theme has no colours left to draw).
 */
export function prepareChalk(env: NodeJS.ProcessEnv): boolean {
  const off = colorsOff(env);
  if (off) env.FORCE_COLOR = "1";
  return off;
}
