/**
 * DNS names as the house compares them. Names arrive with and without the root's trailing dot
 * (`mail.example.` from an answer, `mail.example` from the plan) and in any case; every comparison,
 * label and lookup key goes through here instead of its own `replace(/\.$/, '')`.
 */

/** The name without its trailing root dot (`mail.example.` → `mail.example`), case kept. */
export function withoutRootDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** The name in the form names are compared in: lower case, no trailing root dot. */
export function bareName(name: string): string {
  return withoutRootDot(name.toLowerCase());
}
