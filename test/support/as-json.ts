/**
 * The type of a value read from JSON, for the type checks of test/support/typecheck.ts (which
 * import this file into the modules they generate, so it imports nothing).
 */

/**
 * `T` as JSON can hold it: a TypeScript string enum (`ThresholdsMode`, `MappingType` in
 * `@grafana/schema`) is the union of its values, since JSON has the string, not the enum member.
 * Everything else is left as it is, so excess-property checks still apply at every depth.
 */
export type AsJson<T> = 0 extends 1 & T
  ? T
  : T extends string
    ? `${T}`
    : T extends readonly (infer U)[]
      ? AsJson<U>[]
      : T extends object
        ? { [K in keyof T]: AsJson<T[K]> }
        : T;
