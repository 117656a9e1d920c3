// Schema-aware completion in the editor, where it is cheap:
// - a driver file (drivers/*.yaml): `kind:` values from the node's built-in
//   kinds, and keys from that kind's configuration schema (GET
//   /api/v1/driver-kinds), at any depth the indentation tells, each with its
//   type and description;
// - a JSON Schema file (*.json under schemas/): JSON Schema keywords.
import type { Completion, CompletionContext, CompletionResult, CompletionSource } from "@codemirror/autocomplete";
import { get } from "./api";

interface Schema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  oneOf?: Schema[];
  anyOf?: Schema[];
  default?: unknown;
}

let kinds: Promise<Map<string, Schema>> | null = null;

function driverKinds(): Promise<Map<string, Schema>> {
  kinds ??= get<{ kind: string; schema: Schema }[]>("/api/v1/driver-kinds")
    .then((list) => new Map(list.map((k) => [k.kind, k.schema])))
    .catch(() => {
      kinds = null; // asked again next time
      return new Map<string, Schema>();
    });
  return kinds;
}

// The object schemas a value may take (through oneOf/anyOf).
function objects(s: Schema | undefined): Schema[] {
  if (!s) return [];
  const out = s.properties ? [s] : [];
  for (const alt of [...(s.oneOf || []), ...(s.anyOf || [])]) out.push(...objects(alt));
  return out;
}

function arrayItems(s: Schema | undefined): Schema | undefined {
  if (!s) return undefined;
  if (s.items) return s.items;
  for (const alt of [...(s.oneOf || []), ...(s.anyOf || [])]) {
    const i = arrayItems(alt);
    if (i) return i;
  }
  return undefined;
}

// The keys and list items enclosing line `at`, outermost first, by
// indentation ("" for a list item); the line's own "- " is the last item.
function enclosing(lines: string[], at: number): string[] {
  const indentOf = (l: string) => l.length - l.trimStart().length;
  const path: string[] = [];
  const cur = lines[at];
  if (/^\s*- /.test(cur)) path.push("");
  let need = indentOf(cur);
  for (let i = at - 1; i >= 0 && need > 0; i--) {
    const l = lines[i];
    if (!l.trim() || l.trimStart().startsWith("#")) continue;
    const li = indentOf(l);
    if (li >= need) continue;
    const item = /^\s*- /.test(l);
    const content = l.trimStart().slice(item ? 2 : 0);
    const key = /^([\w.$-]+)\s*:\s*$/.exec(content);
    // A key with its value below (on an item's line: the item's map holds it).
    if (key && need > li + (item ? 2 : 0)) path.unshift(key[1]);
    if (item) path.unshift("");
    if (key || item) need = li;
  }
  return path;
}

function schemaAt(root: Schema, path: string[]): Schema[] {
  let here: Schema[] = [root];
  for (const key of path) {
    const next: Schema[] = [];
    for (const s of here) {
      if (key === "") {
        const i = arrayItems(s);
        if (i) next.push(i);
      } else {
        for (const o of objects(s)) if (o.properties?.[key]) next.push(o.properties[key]);
      }
    }
    here = next;
  }
  return here;
}

function typeText(s: Schema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.type) return Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  return (s.oneOf || s.anyOf || []).map(typeText).join(" | ");
}

const driverFile: CompletionSource = async (ctx: CompletionContext): Promise<CompletionResult | null> => {
  const line = ctx.state.doc.lineAt(ctx.pos);
  const before = line.text.slice(0, ctx.pos - line.from);
  const all = await driverKinds();
  const kindValue = /^kind:\s*(\S*)$/.exec(before);
  if (kindValue) {
    return {
      from: ctx.pos - kindValue[1].length,
      options: [...all.keys()].map((k) => ({ label: k, type: "class", info: all.get(k)?.description })),
    };
  }
  const key = /^(\s*)(- )?([\w.$-]*)$/.exec(before);
  if (!key || (!ctx.explicit && !key[3])) return null;
  const kind = /^kind:\s*(\S+)/m.exec(ctx.state.doc.toString())?.[1];
  const root = kind ? all.get(kind) : undefined;
  if (!root) return null;
  const lines = ctx.state.doc.toString().split("\n");
  const path = enclosing(lines, line.number - 1);
  const options: Completion[] = [];
  const seen = new Set<string>();
  for (const s of schemaAt(root, path))
    for (const o of objects(s))
      for (const [name, p] of Object.entries(o.properties || {})) {
        if (seen.has(name) || (path.length === 0 && name === "kind")) continue;
        seen.add(name);
        const nested = objects(p).length > 0 || arrayItems(p) !== undefined;
        options.push({
          label: name,
          type: "property",
          detail: typeText(p),
          info: p.description,
          apply: name + (nested ? ":\n" + " ".repeat(before.length - key[3].length + 2) : ": "),
        });
      }
  return options.length ? { from: ctx.pos - key[3].length, options, validFor: /^[\w.$-]*$/ } : null;
};

const SCHEMA_KEYWORDS: [string, string][] = [
  ["$schema", "the draft: http://json-schema.org/draft-07/schema# or https://json-schema.org/draft/2020-12/schema"],
  ["$id", "this schema's URI"],
  ["$ref", "another schema (a file, a #/definitions/..., or a registry URL)"],
  ["$defs", "schemas to $ref (2020-12)"],
  ["definitions", "schemas to $ref (draft 07)"],
  ["title", "a short name"],
  ["description", "what the value means"],
  ["type", "null, boolean, object, array, number, integer or string (or a list of them)"],
  ["enum", "the allowed values"],
  ["const", "the one allowed value"],
  ["properties", "the schema of each named property"],
  ["required", "the properties that must be present"],
  ["additionalProperties", "the schema (or false) of properties not named in properties"],
  ["patternProperties", "schemas by property-name pattern"],
  ["propertyNames", "a schema every property name must match"],
  ["minProperties", "at least this many properties"],
  ["maxProperties", "at most this many properties"],
  ["items", "the schema of every item (2020-12: after prefixItems)"],
  ["prefixItems", "the schemas of the first items, in order (2020-12)"],
  ["contains", "a schema at least one item matches"],
  ["minItems", "at least this many items"],
  ["maxItems", "at most this many items"],
  ["uniqueItems", "no two items equal"],
  ["minimum", "the smallest number allowed"],
  ["maximum", "the largest number allowed"],
  ["exclusiveMinimum", "numbers must be greater than this"],
  ["exclusiveMaximum", "numbers must be less than this"],
  ["multipleOf", "numbers must be a multiple of this"],
  ["minLength", "strings at least this long"],
  ["maxLength", "strings at most this long"],
  ["pattern", "a regular expression strings must match"],
  ["format", "date-time, email, uri, uuid, ... (an annotation unless asserted)"],
  ["allOf", "schemas the value must all match"],
  ["anyOf", "schemas the value must match at least one of"],
  ["oneOf", "schemas the value must match exactly one of"],
  ["not", "a schema the value must not match"],
  ["if", "a condition: then applies when it matches, else when not"],
  ["then", "the schema when if matches"],
  ["else", "the schema when if does not match"],
  ["default", "the value assumed when absent (an annotation)"],
  ["examples", "example values"],
];

const schemaFile: CompletionSource = (ctx: CompletionContext): CompletionResult | null => {
  const word = ctx.matchBefore(/"[\w$]*/);
  if (!word) return null;
  const before = ctx.state.sliceDoc(Math.max(0, word.from - 200), word.from);
  if (!/[{,]\s*$/.test(before)) return null; // a property name's place only
  return {
    from: word.from + 1,
    options: SCHEMA_KEYWORDS.map(([label, info]) => ({ label, type: "keyword", info, apply: label })),
    validFor: /^[\w$]*$/,
  };
};

// The completion source for a file, if there is one.
export function completionFor(path: string): CompletionSource | null {
  if (/^drivers\/[^/]+\.ya?ml$/.test(path)) return driverFile;
  if (/\.json$/.test(path) && (path.startsWith("schemas/") || path.includes("/schemas/"))) return schemaFile;
  return null;
}
