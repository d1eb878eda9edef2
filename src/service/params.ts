// Checks of what a client sends, shared by the request handlers: a malformed parameter is a clear bad_request,
// never an exception deeper in a service.
import { badRequest } from "./errors.ts";

export function asObject(v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw badRequest("parameters must be a map");
  return v as Record<string, unknown>;
}

export function str(p: Record<string, unknown>, name: string): string {
  const v = p[name];
  if (typeof v !== "string" || v === "") throw badRequest(`missing or invalid "${name}"`);
  return v;
}

export function optStr(p: Record<string, unknown>, name: string): string | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw badRequest(`"${name}" must be a string`);
  return v;
}

export function optBool(p: Record<string, unknown>, name: string): boolean | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badRequest(`"${name}" must be true or false`);
  return v;
}
