// Validates an OpenAPI 3.1 description with an independent validator:
// @seriousme/openapi-schema-validator checks the document against the
// official OpenAPI schema, then Ajv (JSON Schema 2020-12, strict) compiles
// every schema in it, so that a schema with a wrong keyword or a $ref to
// nothing fails too.
//
//   node check.mjs FILE                    exit 0 when FILE is valid
//   node check.mjs --expect-invalid FILE   exit 0 when the validator rejects FILE
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const args = process.argv.slice(2);
const expectInvalid = args[0] === "--expect-invalid";
const file = expectInvalid ? args[1] : args[0];
if (!file) {
  console.error("usage: node check.mjs [--expect-invalid] FILE");
  process.exit(2);
}

async function check() {
  let doc;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    return [`${file}: not JSON: ${e.message}`];
  }
  if (doc.openapi !== "3.1.0") return [`openapi: expected "3.1.0", found ${JSON.stringify(doc.openapi)}`];
  const validator = new Validator();
  const res = await validator.validate(doc);
  if (!res.valid) {
    if (!Array.isArray(res.errors)) return [String(res.errors)];  // e.g. a $ref to nothing
    return res.errors.map((e) => `${e.instancePath || "/"}: ${e.message} ${JSON.stringify(e.params)}`);
  }

  // Every Schema Object compiles; component $refs become ids Ajv resolves.
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  const prefix = "#/components/schemas/";
  const rewrite = (node) => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node && typeof node === "object") {
      const out = {};
      for (const [k, v] of Object.entries(node))
        out[k] = k === "$ref" && typeof v === "string" && v.startsWith(prefix) ? `urn:component:${v.slice(prefix.length)}` : rewrite(v);
      return out;
    }
    return node;
  };
  const errors = [];
  const components = doc.components?.schemas ?? {};
  for (const [name, schema] of Object.entries(components)) ajv.addSchema(rewrite(schema), `urn:component:${name}`);
  const compile = (where, schema) => {
    try {
      ajv.compile(rewrite(schema));
    } catch (e) {
      errors.push(`${where}: ${e.message}`);
    }
  };
  for (const name of Object.keys(components)) compile(`components/schemas/${name}`, { $ref: `${prefix}${name}` });
  for (const [path, item] of Object.entries(doc.paths ?? {}))
    for (const [method, op] of Object.entries(item)) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const p of op.parameters ?? []) compile(`${at} parameter ${p.name}`, p.schema);
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {}))
        compile(`${at} request ${type}`, media.schema);
      for (const [status, response] of Object.entries(op.responses ?? {}))
        for (const [type, media] of Object.entries(response.content ?? {}))
          compile(`${at} ${status} ${type}`, media.schema);
    }
  return errors;
}

const errors = await check();
if (expectInvalid) {
  if (errors.length === 0) {
    console.error(`${file}: expected the validator to reject it, and it passed`);
    process.exit(1);
  }
  console.log(`${file}: rejected as expected (${errors.length} problems, the first: ${errors[0]})`);
  process.exit(0);
}
if (errors.length) {
  console.error(`${file}: not a valid OpenAPI 3.1 description:`);
  for (const e of errors) console.error(`  ${e}`);
  process.exit(1);
}
console.log(`${file}: a valid OpenAPI 3.1 description`);
