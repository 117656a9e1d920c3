#!/usr/bin/python3
"""Checks every driver configuration in the repository against its kind's
schema (drivers/schemas/KIND.json).

    /usr/bin/python3 drivers/schemas/check_examples.py [-v]

Where configurations come from:
  - examples/*/drivers/*.yaml;
  - driver files written by the Python tests and scripts (tests/system/*.py,
    tests/hostile/*.py, benchmarks/run, tools/chaos, tools/soak): string
    values of "drivers/NAME.yaml" keys, evaluated from the source (f-strings,
    concatenations, local variables, loop variables over literal lists, the
    arguments of the calls of the function that builds them; a value the
    test takes at run time, like a broker's URL, gets a plausible stand-in);
  - `yaml` blocks with a built-in `kind:` in docs/*.md and README.md;
  - the JSON given to the parsers in drivers/tests/*.cpp (`kind` added),
    and the driver files of fuzz/corpus/project/* (reported, not judged).

A driver file is read the way the node reads it: YAML 1.2 core scalars
(runtime/src/project_yaml_json.cpp), so `yes` is a string and `1.0` a number.
Configurations a test makes invalid on purpose are listed in EXPECTED_INVALID
with the field the test expects in the error; each must fail the schema at
that field, or be accepted by the schema when only the parser (or the
deploy) refuses it. Every other configuration must pass.

Validation uses a draft-07 subset written here (the keywords the schemas
use; an unknown keyword is an error, never ignored) and, when built, the
project's own validator (build/bin/flowstate or
build/schema/flowstate-schema-check, `schema check`): the two must agree.
Exit status 0 when everything is as expected, 1 otherwise.
"""
import ast
import glob
import json
import math
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "drivers", "schemas")
VERBOSE = "-v" in sys.argv[1:]

# Deliberately invalid configurations of the tests: (source file, text the
# configuration holds) -> (what the test expects in the error, where the
# schema must refuse it: an instance location prefix, or None when only the
# parser or the deploy refuses it).
EXPECTED_INVALID = {
    ("tests/system/test_http_post.py", "url: hooks.example.com/x"): ("url:", "/url"),
    ("tests/system/test_mqtt.py", "topic: counts/#"): ("topic:", "/topic"),
    ("tests/system/test_mqtt.py", "qos: 3"): ("qos:", "/qos"),
    ("tests/system/test_mqtt.py", "broker: 127.0.0.1:1883"): ("broker:", "/broker"),
    ("tests/system/test_mqtt.py", "topics: [a/#/b]"): ("topics:", "/topics"),
    ("tests/system/test_mqtt.py", "batchWindow: 1s"): ("batchWindow:", "/batchWindow"),
    ("tests/system/test_timers.py", "evry: 2s"): ('unknown field "evry"', "/evry"),
    # A string duration's range (every: 10ms to 168h) is left to the parser.
    ("tests/system/test_timers.py", "every: 5ms"): ("every:", None),
    ("tests/system/test_deploy.py", "path: count/{key}"): ("must start with /", "/path"),
    # The secret does not exist: the deploy refuses it before any parser runs.
    ("tests/system/test_secrets.py", "${secret:NOPE}"): ("NOPE", None),
}

PY_SOURCES = ["tests/system/*.py", "tests/hostile/*.py", "benchmarks/run", "tools/chaos", "tools/soak"]
DOC_SOURCES = ["docs/*.md", "README.md"]


# --------------------------------------------------------------------------
# YAML as the node reads it (yaml-cpp, then project_yaml_json.cpp).

def _int_as_json(s):
    if re.fullmatch(r"[-+]?[0-9]+", s):
        return int(s, 10)
    if re.fullmatch(r"0x[0-9a-fA-F]+", s):
        return int(s[2:], 16)
    if re.fullmatch(r"0o[0-7]+", s):
        return int(s[2:], 8)
    return None


def _float_as_json(s):
    if not re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", s):
        return None
    value = float(s)
    if math.isinf(value):
        return None
    return value


def _scalar(node):
    text = node.value
    if node.style not in (None, ""):  # quoted or block scalar: a string
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    n = _int_as_json(text)
    if n is not None:
        return n
    f = _float_as_json(text)
    if f is not None:
        return f
    return text


def _to_json(node):
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_to_json(item) for item in node.value]
    out = {}
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else json.dumps(_to_json(key), separators=(",", ":"))
        out[name] = _to_json(value)
    return out


def yaml_config(text):
    """The driver file as JSON (a Python value), or raises ValueError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ValueError("not YAML: " + str(e).replace("\n", " ")[:120])
    if node is None:
        raise ValueError("empty")
    return _to_json(node)


# --------------------------------------------------------------------------
# A draft-07 subset.

ANNOTATIONS = {"$schema", "$comment", "$id", "title", "description", "default", "examples", "definitions"}


class SchemaError(Exception):
    pass


def _ecma_to_python(pattern):
    """ECMA-262 `$` matches only at the end; Python's also before a final newline."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1:i + 2]
            out.append({"d": "[0-9]", "w": "[A-Za-z0-9_]"}.get(nxt, "\\" + nxt) if not in_class else "\\" + nxt)
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


_patterns = {}


def _matches(pattern, text):
    if pattern not in _patterns:
        _patterns[pattern] = _ecma_to_python(pattern)
    return _patterns[pattern].search(text) is not None


def _is_type(value, name):
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    raise SchemaError("unknown type " + name)


def _canon(value):
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, list):
        return ("a", tuple(_canon(v) for v in value))
    return ("o", tuple(sorted((k, _canon(v)) for k, v in value.items())))


def _ptr(path, part):
    return path + "/" + str(part).replace("~", "~0").replace("/", "~1")


def validate(schema, value, root=None, at="", kw=""):
    """[(instance location, keyword location, message)]: empty when valid."""
    root = root if root is not None else schema
    if schema is True:
        return []
    if schema is False:
        return [(at, kw, "false schema")]
    errors = []

    def err(keyword, message):
        errors.append((at, kw + "/" + keyword, message))

    for keyword, arg in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword == "$ref":
            if not arg.startswith("#"):
                raise SchemaError("only local $ref: " + arg)
            target = root
            for part in [p for p in arg[1:].split("/") if p]:
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return validate(target, value, root, at, kw + "/$ref")  # draft-07: $ref hides its siblings
        if keyword == "type":
            names = arg if isinstance(arg, list) else [arg]
            if not any(_is_type(value, n) for n in names):
                err("type", f"{json.dumps(value)[:40]} is not of type {arg}")
        elif keyword == "enum":
            if _canon(value) not in [_canon(v) for v in arg]:
                err("enum", f"{json.dumps(value)[:40]} is not one of {arg}")
        elif keyword == "const":
            if _canon(value) != _canon(arg):
                err("const", f"{json.dumps(value)[:40]} is not {json.dumps(arg)}")
        elif keyword == "required":
            if isinstance(value, dict):
                for name in arg:
                    if name not in value:
                        err("required", f'required property "{name}" is missing')
        elif keyword == "properties":
            if isinstance(value, dict):
                for name, sub in arg.items():
                    if name in value:
                        errors += validate(sub, value[name], root, _ptr(at, name), _ptr(kw + "/properties", name))
        elif keyword == "patternProperties":
            if isinstance(value, dict):
                for pattern, sub in arg.items():
                    for name in value:
                        if _matches(pattern, name):
                            errors += validate(sub, value[name], root, _ptr(at, name),
                                               _ptr(kw + "/patternProperties", pattern))
        elif keyword == "additionalProperties":
            if isinstance(value, dict):
                known = set(schema.get("properties", {}))
                patterns = list(schema.get("patternProperties", {}))
                for name in value:
                    if name in known or any(_matches(p, name) for p in patterns):
                        continue
                    if arg is False:
                        errors.append((_ptr(at, name), kw + "/additionalProperties",
                                       f'property "{name}" is not allowed'))
                    else:
                        errors += validate(arg, value[name], root, _ptr(at, name), kw + "/additionalProperties")
        elif keyword == "propertyNames":
            if isinstance(value, dict):
                for name in value:
                    errors += [(_ptr(at, name), k, m) for _, k, m in validate(arg, name, root, at, kw + "/propertyNames")]
        elif keyword in ("minProperties", "maxProperties"):
            if isinstance(value, dict) and (len(value) < arg if keyword == "minProperties" else len(value) > arg):
                err(keyword, f"{len(value)} properties, {keyword} is {arg}")
        elif keyword == "items":
            if isinstance(value, list):
                if isinstance(arg, list):
                    for i, (item, sub) in enumerate(zip(value, arg)):
                        errors += validate(sub, item, root, _ptr(at, i), _ptr(kw + "/items", i))
                else:
                    for i, item in enumerate(value):
                        errors += validate(arg, item, root, _ptr(at, i), kw + "/items")
        elif keyword in ("minItems", "maxItems"):
            if isinstance(value, list) and (len(value) < arg if keyword == "minItems" else len(value) > arg):
                err(keyword, f"{len(value)} items, {keyword} is {arg}")
        elif keyword == "uniqueItems":
            if arg and isinstance(value, list) and len({_canon(v) for v in value}) != len(value):
                err(keyword, "items are not unique")
        elif keyword == "pattern":
            if isinstance(value, str) and not _matches(arg, value):
                err(keyword, f"{json.dumps(value)[:60]} does not match {arg}")
        elif keyword in ("minLength", "maxLength"):
            if isinstance(value, str) and (len(value) < arg if keyword == "minLength" else len(value) > arg):
                err(keyword, f"{json.dumps(value)[:40]}: length {len(value)}, {keyword} is {arg}")
        elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if _is_type(value, "number"):
                bad = {"minimum": value < arg, "maximum": value > arg,
                       "exclusiveMinimum": value <= arg, "exclusiveMaximum": value >= arg}[keyword]
                if bad:
                    err(keyword, f"{value} is out of range ({keyword} {arg})")
        elif keyword == "allOf":
            for i, sub in enumerate(arg):
                errors += validate(sub, value, root, at, f"{kw}/allOf/{i}")
        elif keyword in ("anyOf", "oneOf"):
            results = [validate(sub, value, root, at, f"{kw}/{keyword}/{i}") for i, sub in enumerate(arg)]
            passed = sum(1 for r in results if not r)
            if keyword == "anyOf" and passed == 0:
                errors += [e for r in results for e in r]
                err(keyword, "matches none of anyOf")
            if keyword == "oneOf" and passed != 1:
                if passed == 0:
                    errors += [e for r in results for e in r]
                err(keyword, f"matches {passed} of oneOf")
        elif keyword == "not":
            if not validate(arg, value, root, at, kw + "/not"):
                err(keyword, "matches the schema in not")
        elif keyword == "if":
            if not validate(arg, value, root, at, kw + "/if"):
                if "then" in schema:
                    errors += validate(schema["then"], value, root, at, kw + "/then")
            elif "else" in schema:
                errors += validate(schema["else"], value, root, at, kw + "/else")
        elif keyword in ("then", "else"):
            pass  # with "if"
        else:
            raise SchemaError("keyword not supported by this script: " + keyword)
    return errors


# --------------------------------------------------------------------------
# The project's validator, when built.

def project_validator():
    for rel in ("build/bin/flowstate", "build/schema/flowstate-schema-check"):
        path = os.path.join(ROOT, rel)
        if os.access(path, os.X_OK):
            try:
                p = subprocess.run([path, "schema", "check", "--help"], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if p.returncode in (0, 1, 2) and "schema" in (p.stdout + p.stderr):
                return path
    return None


def project_verdicts(binary, schema_path, instances):
    """[valid?] from `schema check`, or raises RuntimeError."""
    lines = "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in instances)
    p = subprocess.run([binary, "schema", "check", schema_path, "--draft", "07"], input=lines.encode(),
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{binary} schema check {schema_path}: exit {p.returncode}: {p.stderr.decode()[:300]}")
    out = [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]
    if len(out) != len(instances):
        raise RuntimeError(f"{len(out)} answers for {len(instances)} instances")
    return [o["valid"] for o in out]


# --------------------------------------------------------------------------
# Driver files in Python sources.

class Unknown(Exception):
    """A value the source computes at run time from something not literal."""


STAND_INS = []  # (name, value) used while evaluating the current driver file


def stand_in(name):
    """A plausible value for something the test knows only at run time."""
    last = name.rsplit(".", 1)[-1]
    if last == "url" and "broker" in name:
        value = "mqtt://127.0.0.1:1883"
    elif last == "url" and "influx" in name:
        value = "http://127.0.0.1:8086"
    elif last == "url":
        value = "http://127.0.0.1:8080"
    elif last == "conninfo":
        value = "host=127.0.0.1 port=5432 dbname=iot user=app"
    elif "port" in last:
        value = 18080
    else:
        value = "x0"
    if (name, value) not in STAND_INS:
        STAND_INS.append((name, value))
    return value


def dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return dotted(node.value) + "." + node.attr
    if isinstance(node, ast.Subscript):
        return dotted(node.value) + "[]"
    if isinstance(node, ast.Call):
        return dotted(node.func) + "()"
    return type(node).__name__


class PyModule:
    def __init__(self, rel, text):
        self.rel = rel
        self.tree = ast.parse(text)
        self.parent = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.functions = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, []).append(node)
        self.imports = {}  # name -> module name
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.imports[a.asname or a.name] = node.module
        self.module_assigns = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.module_assigns[node.targets[0].id] = node.value

    def enclosing(self, node, kinds):
        out = []
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, kinds):
                out.append(node)
        return out

    def function_of(self, node):
        f = self.enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        return f[0] if f and not isinstance(f[0], ast.Lambda) else None


class PyIndex:
    def __init__(self, modules):
        self.modules = modules
        self.by_stem = {os.path.splitext(os.path.basename(m.rel))[0]: m for m in modules}
        self._bindings = {}

    # The functions a call in module `m` to `name` may reach.
    def resolve_function(self, m, name):
        if name in m.functions:
            return [(m, f) for f in m.functions[name]]
        other = self.by_stem.get(m.imports.get(name, ""))
        if other and name in other.functions:
            return [(other, f) for f in other.functions[name]]
        return []

    def calls_to(self, target_module, fn):
        for m in self.modules:
            for node in ast.walk(m.tree):
                if isinstance(node, ast.Call):
                    name = node.func.id if isinstance(node.func, ast.Name) else None
                    if name == fn.name and any(f is fn for _, f in self.resolve_function(m, name)):
                        yield m, node

    def bindings(self, m, fn, depth=0):
        """Every binding of fn's parameters seen at its call sites (defaults filled in)."""
        if fn is None:
            return [{}]
        key = id(fn)
        if key in self._bindings:
            return self._bindings[key]
        self._bindings[key] = [{}]  # recursion guard
        args = fn.args
        params = [a.arg for a in args.posonlyargs + args.args]
        defaults = {}
        for a, d in zip((args.posonlyargs + args.args)[len(params) - len(args.defaults):], args.defaults):
            defaults[a.arg] = d
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            if d is not None:
                defaults[a.arg] = d
        params += [a.arg for a in args.kwonlyargs]
        out = []
        sites = list(self.calls_to(m, fn)) if depth < 6 else []
        for cm, call in sites:
            caller = cm.function_of(call)
            for caller_env in self.bindings(cm, caller, depth + 1):
                for loop_env in self.loop_bindings(cm, call, caller_env):
                    env = dict(caller_env, **loop_env)
                    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                        continue  # *args, **kwargs: not followed
                    b = {}
                    for p, a in list(zip(params, call.args)) + [(k.arg, k.value) for k in call.keywords]:
                        try:
                            b[p] = self.eval(cm, a, env, call)
                        except Unknown:
                            b[p] = stand_in(p)  # an object the test makes (a broker, a server)
                    out.append(self.fill(m, fn, params, defaults, b))
        if not sites:
            out.append(self.fill(m, fn, params, defaults, {}))
        unique = []
        for b in out:
            if b not in unique:
                unique.append(b)
        self._bindings[key] = unique or [self.fill(m, fn, params, defaults, {})]
        return self._bindings[key]

    def fill(self, m, fn, params, defaults, given):
        b = {}
        for p in params:
            if p in given:
                b[p] = given[p]
            elif p in defaults:
                try:
                    b[p] = self.eval(m, defaults[p], {}, fn)
                except Unknown:
                    b[p] = stand_in(p)
            else:
                b[p] = stand_in(p)
        return b

    def loop_bindings(self, m, node, env):
        """Bindings of the variables of the `for` loops around node, inside its function."""
        fn = m.function_of(node)
        loops = []
        for f in m.enclosing(node, (ast.For, ast.FunctionDef, ast.AsyncFunctionDef)):
            if f is fn:
                break
            if isinstance(f, ast.For):
                loops.append(f)
        result = [{}]
        for loop in reversed(loops):  # outermost first
            nxt = []
            for partial in result:
                for values in self.iterate(m, loop, dict(env, **partial)):
                    nxt.append(dict(partial, **values))
            result = nxt
        return result

    def iterate(self, m, loop, env):
        target = loop.target
        items = loop.iter
        if isinstance(items, ast.Name):
            assign = self.assignment(m, items.id, loop)
            items = assign if assign is not None else items
        names = [t.id for t in target.elts] if isinstance(target, ast.Tuple) and \
            all(isinstance(t, ast.Name) for t in target.elts) else [target.id] if isinstance(target, ast.Name) else None
        if names is None or not isinstance(items, (ast.List, ast.Tuple)):
            return [{n: stand_in(n) for n in (names or [])}]
        out = []
        for element in items.elts:
            try:
                if len(names) == 1:
                    out.append({names[0]: self.eval(m, element, env, loop)})
                elif isinstance(element, (ast.Tuple, ast.List)) and len(element.elts) == len(names):
                    out.append({n: self.eval(m, e, env, loop) for n, e in zip(names, element.elts)})
            except Unknown:
                continue
        return out

    def assignment(self, m, name, use):
        """The value of the last plain `name = ...` before `use` in its function (or the module)."""
        fn = m.function_of(use)
        scope = fn if fn is not None else m.tree
        best = None
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and node.lineno <= use.lineno and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name) and node.targets[0].id == name and \
                    m.function_of(node) is fn:
                if best is None or node.lineno > best.lineno:
                    best = node
        return best.value if best is not None else None

    def eval(self, m, node, env, use):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            out = []
            for part in node.values:
                if isinstance(part, ast.Constant):
                    out.append(part.value)
                else:
                    try:
                        v = self.eval(m, part.value, env, use)
                    except Unknown:
                        v = stand_in(dotted(part.value))  # a value made at run time: a port, a path
                    v = repr(v) if part.conversion == ord("r") else v
                    spec = self.eval(m, part.format_spec, env, use) if part.format_spec else ""
                    out.append(format(v, spec))
            return "".join(out)
        if isinstance(node, ast.BinOp):
            left, right = self.eval(m, node.left, env, use), self.eval(m, node.right, env, use)
            try:
                if isinstance(node.op, ast.Add):
                    return left + right
                if isinstance(node.op, ast.Mod):
                    return left % right
                if isinstance(node.op, ast.Mult):
                    return left * right
            except TypeError:
                raise Unknown("operands")
            raise Unknown("operator")
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in ("None", "True", "False"):
                return {"None": None, "True": True, "False": False}[node.id]
            value = self.assignment(m, node.id, use)
            if value is not None and value is not use:
                return self.eval(m, value, env, value)
            if node.id in m.module_assigns:
                return self.eval(m, m.module_assigns[node.id], {}, m.module_assigns[node.id])
            other = self.by_stem.get(m.imports.get(node.id, ""))
            if other and node.id in other.module_assigns:
                return self.eval(other, other.module_assigns[node.id], {}, other.module_assigns[node.id])
            return stand_in(node.id)
        if isinstance(node, ast.Attribute):
            return stand_in(dotted(node))
        if isinstance(node, ast.Subscript):
            base = self.eval(m, node.value, env, use) if isinstance(node.value, (ast.Name, ast.Dict, ast.List)) else None
            if isinstance(base, (dict, list, tuple)):
                try:
                    return base[self.eval(m, node.slice, env, use)]
                except (KeyError, IndexError, TypeError):
                    raise Unknown("subscript")
            if isinstance(node.value, ast.Name) and node.value.id in env:
                return stand_in(dotted(node))
            raise Unknown("subscript of " + dotted(node.value))
        if isinstance(node, ast.IfExp):
            return self.eval(m, node.body if self.eval(m, node.test, env, use) else node.orelse, env, use)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = self.eval(m, node.left, env, use), self.eval(m, node.comparators[0], env, use)
            op = node.ops[0]
            table = {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.Is: lambda: a is b,
                     ast.IsNot: lambda: a is not b}
            if type(op) in table:
                return table[type(op)]()
            raise Unknown("comparison")
        if isinstance(node, ast.BoolOp):
            values = [self.eval(m, v, env, use) for v in node.values]
            if isinstance(node.op, ast.Or):
                return next((v for v in values if v), values[-1])
            return next((v for v in values if not v), values[-1])
        if isinstance(node, ast.Dict):
            return {self.eval(m, k, env, use): self.eval(m, v, env, use) for k, v in zip(node.keys, node.values)}
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(m, e, env, use) for e in node.elts]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = self.eval(m, node.func.value, env, use)
            if isinstance(base, str) and node.func.attr in ("format", "replace", "strip"):
                args = [self.eval(m, a, env, use) for a in node.args]
                kwargs = {k.arg: self.eval(m, k.value, env, use) for k in node.keywords}
                return getattr(base, node.func.attr)(*args, **kwargs)
            raise Unknown("call of " + dotted(node.func))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
            return str(self.eval(m, node.args[0], env, use))
        raise Unknown(type(node).__name__ + " " + dotted(node))


DRIVER_KEY = re.compile(r"drivers/[^/]+\.yaml")


def python_configs(paths):
    """[(source, line, driver file, text or None, why not, stand-ins)] of the driver files the sources write."""
    modules = []
    for rel in paths:
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            try:
                modules.append(PyModule(rel, f.read()))
            except SyntaxError as e:
                print(f"warning: {rel}: not Python: {e}")
    index = PyIndex(modules)
    found, seen = [], set()
    for m in modules:
        for node in ast.walk(m.tree):
            pairs = []
            if isinstance(node, ast.Dict):
                pairs = [(k, v) for k, v in zip(node.keys, node.values) if k is not None]
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
                pairs = [(node.targets[0].slice, node.value)]
            for key, value in pairs:
                if not isinstance(key, (ast.Constant, ast.JoinedStr, ast.Name)):
                    continue
                if isinstance(key, ast.Constant) and not (isinstance(key.value, str) and DRIVER_KEY.fullmatch(key.value)):
                    continue
                fn = m.function_of(node)
                results = []
                for env in index.bindings(m, fn):
                    for loop_env in index.loop_bindings(m, node, env):
                        full = dict(env, **loop_env)
                        try:
                            name = index.eval(m, key, full, node)
                        except Unknown:
                            continue
                        if not (isinstance(name, str) and DRIVER_KEY.fullmatch(name)):
                            continue
                        del STAND_INS[:]
                        try:
                            text = index.eval(m, value, full, node)
                            results.append((name, text if isinstance(text, str) else None,
                                            None if isinstance(text, str) else "not a string", tuple(STAND_INS)))
                        except Unknown as e:
                            results.append((name, None, str(e), ()))
                for name, text, why, stand_ins in results:
                    k = (m.rel, value.lineno, name, text, why)
                    if k not in seen:
                        seen.add(k)
                        found.append((m.rel, value.lineno, name, text, why, stand_ins))
    return found


# --------------------------------------------------------------------------
# Other places.

def doc_configs(paths):
    out = []
    for rel in sorted({os.path.relpath(p, ROOT) for pattern in paths for p in glob.glob(os.path.join(ROOT, pattern))}):
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            lines = f.read().split("\n")
        i = 0
        while i < len(lines):
            if lines[i].strip() in ("```yaml", "```yml"):
                start = i + 1
                j = start
                while j < len(lines) and not lines[j].startswith("```"):
                    j += 1
                out.append((rel, start + 1, "\n".join(lines[start:j]) + "\n"))
                i = j
            i += 1
    return out


CPP_KINDS = {
    ("http_post_test.cpp", "parse"): "http.Post",
    ("http_routes_test.cpp", "parse_request_routes"): "http.Request",
    ("influxdb_test.cpp", "parse_write"): "influxdb.Write",
    ("influxdb_test.cpp", "parse_query"): "influxdb.Query",
    ("postgres_test.cpp", "parse_query"): "postgres.Query",
    ("timer_test.cpp", "parse_interval"): "timer.Interval",
    ("timer_test.cpp", "parse_cron"): "timer.Cron",
    ("mqtt_codec_test.cpp", "parse_subscribe"): "mqtt.Subscribe",
    ("mqtt_codec_test.cpp", "parse_publish"): "mqtt.Publish",
    ("mqtt_config_test.cpp", "parse_subscribe"): "mqtt.Subscribe",
    ("mqtt_config_test.cpp", "parse_publish"): "mqtt.Publish",
}
CPP_CALL = re.compile(r'(?<![:\w])(parse_request_routes|parse_interval|parse_cron|parse_topic|parse_write|parse_query|'
                      r'parse_subscribe|parse_publish|parse)\(R"\((.*?)\)"(\s*,\s*(true|false|"[^"]*"))?\s*\)', re.S)


def cpp_configs():
    """[(source, line, kind, config, expected valid?)] from the parsers' unit tests."""
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "drivers/tests/*_test.cpp"))):
        rel = os.path.relpath(path, ROOT)
        text = open(path, encoding="utf-8").read()
        for call in CPP_CALL.finditer(text):
            fn, body, extra = call.group(1), call.group(2), call.group(4)
            base = os.path.basename(path)
            if fn == "parse_write" and base == "postgres_test.cpp":
                kind = "postgres.Upsert" if extra == "true" else "postgres.Insert"
            elif fn == "parse_topic":
                kind = (extra or '""').strip('"')
            else:
                kind = CPP_KINDS.get((base, fn))
            if not kind:
                continue
            try:
                config = json.loads(body)
            except ValueError:
                continue
            if not isinstance(config, dict):
                continue
            config.setdefault("kind", kind)
            # CHECK(parse(...).error()...) and CHECK(!parse(...).ok()) expect a refusal.
            valid = not (re.match(r"\s*\.error\(\)", text[call.end():]) or text[:call.start()].rstrip().endswith("!"))
            out.append((rel, text.count("\n", 0, call.start()) + 1, kind, config, valid))
    return out


def fuzz_configs():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "fuzz/corpus/project/*"))):
        raw = open(path, "rb").read().decode("utf-8", "replace")
        for section in re.split(r"^=== ", raw, flags=re.M)[1:]:
            name, _, body = section.partition("\n")
            if DRIVER_KEY.fullmatch(name.strip()):
                out.append((os.path.relpath(path, ROOT), name.strip(), body))
    return out


# --------------------------------------------------------------------------

def main():
    schemas = {}
    for path in sorted(glob.glob(os.path.join(SCHEMAS, "*.json"))):
        kind = os.path.basename(path)[:-5]
        with open(path, encoding="utf-8") as f:
            schemas[kind] = json.load(f)
    problems = []
    checks = []  # every (label, kind, config, mini verdict) for the cross-check

    def check(label, kind, config):
        try:
            errors = validate(schemas[kind], config)
        except SchemaError as e:
            problems.append(f"{kind}: {e}")
            errors = [("", "", str(e))]
        checks.append((label, kind, config, not errors))
        return errors

    def describe(errors):
        shown = [e for e in errors if not e[1].endswith(("/anyOf", "/oneOf"))] or errors
        return "; ".join(f"{at or '/'}: {msg} ({kw})" for at, kw, msg in shown[:3])

    def kind_of(config):
        kind = config.get("kind") if isinstance(config, dict) else None
        return kind if isinstance(kind, str) and kind in schemas else None

    print(f"schemas: {len(schemas)} in drivers/schemas ({', '.join(schemas)})")
    for kind, s in schemas.items():
        if s.get("$schema") != "http://json-schema.org/draft-07/schema#" or s.get("title") != kind:
            problems.append(f"{kind}.json: $schema must be draft-07 and title {kind}")
        for name, prop in s.get("properties", {}).items():
            if not isinstance(prop, dict) or not prop.get("description"):
                problems.append(f"{kind}.json: property {name} has no description")

    # Examples.
    n = ok = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "examples/*/drivers/*.yaml"))):
        rel = os.path.relpath(path, ROOT)
        config = yaml_config(open(path, encoding="utf-8").read())
        kind = kind_of(config)
        if not kind:
            continue
        n += 1
        errors = check(rel, kind, config)
        if errors:
            problems.append(f"{rel} ({kind}): {describe(errors)}")
        else:
            ok += 1
        if VERBOSE:
            print(f"  {rel} ({kind}): {'ok' if not errors else describe(errors)}")
    print(f"\nexamples/*/drivers/*.yaml: {n} checked, {ok} passed")

    # Tests and scripts.
    paths = sorted({os.path.relpath(p, ROOT) for pattern in PY_SOURCES for p in glob.glob(os.path.join(ROOT, pattern))})
    found = python_configs(paths)
    n = ok = 0
    expected_lines, skipped, custom = [], [], 0
    matched = set()
    used_stand_ins = set()
    for src, line, name, text, why, stand_ins in found:
        where = f"{src}:{line} {name}"
        if text is None:
            skipped.append(f"{where}: not evaluated ({why})")
            continue
        try:
            config = yaml_config(text)
        except ValueError as e:
            skipped.append(f"{where}: {e}")
            continue
        kind = kind_of(config)
        if not kind:
            other = config.get("kind") if isinstance(config, dict) else None
            if isinstance(other, str) and other.startswith(("npm:", "python:")):
                custom += 1
                if VERBOSE:
                    print(f"  {where}: kind {other}: a custom driver, no schema")
            else:
                problems.append(f"{where}: kind {other!r} has no schema (a built-in kind without one?)")
            continue
        n += 1
        used_stand_ins.update(stand_ins)
        errors = check(where, kind, config)
        expect = next(((k, v) for k, v in EXPECTED_INVALID.items() if k[0] == src and k[1] in text), None)
        if expect:
            matched.add(expect[0])
            field, location = expect[1]
            if location is None:
                verdict = "accepted by the schema; refused by the parser or the deploy" if not errors else None
                if errors:
                    problems.append(f"{where} ({kind}): expected to pass the schema (only the parser or the deploy "
                                    f"refuses it), but: {describe(errors)}")
            else:
                hits = sorted((e for e in errors if e[0] == location or e[0].startswith(location + "/")),
                              key=lambda e: e[1].rsplit("/", 1)[-1] in ("type", "anyOf", "oneOf"))
                verdict = f"refused by the schema at {hits[0][0]} ({hits[0][1].rsplit('/', 1)[-1]})" if hits else None
                if not hits:
                    problems.append(f"{where} ({kind}): expected a schema error at {location}, got: "
                                    f"{describe(errors) if errors else 'valid'}")
            expected_lines.append(f"  {where} ({kind}) {expect[0][1]!r}: the test expects {field!r} in the "
                                  f"error; {verdict or 'NOT AS EXPECTED'}")
            continue
        if errors:
            problems.append(f"{where} ({kind}): {describe(errors)}\n      {text!r}")
        else:
            ok += 1
        if VERBOSE:
            print(f"  {where} ({kind}): {'ok' if not errors else describe(errors)}")
    for key in EXPECTED_INVALID:
        if key not in matched:
            problems.append(f"EXPECTED_INVALID entry not found any more: {key}")
    print(f"\ntests and scripts ({', '.join(PY_SOURCES)}): {len(found)} driver files found, "
          f"{n} with a built-in kind checked: {ok} passed, {len(expected_lines)} expected failures"
          f"{f', {custom} of custom kinds (no schema)' if custom else ''}")
    if expected_lines:
        print("  expected failures (invalid on purpose in the tests):")
        print("\n".join("  " + line for line in expected_lines))
    if skipped:
        print("  not checked (text made at run time):")
        print("\n".join("    " + s for s in skipped))
    if used_stand_ins:
        print("  stand-ins for values the tests know at run time: " +
              ", ".join(sorted(f"{name}={value!r}" for name, value in used_stand_ins)))

    # Docs.
    n = ok = unparsed = 0
    for src, line, text in doc_configs(DOC_SOURCES):
        try:
            config = yaml_config(text)
        except ValueError:
            if re.search(r"^kind: (http|mqtt|influxdb|postgres|timer|flow)\.", text, re.M):
                unparsed += 1
                if VERBOSE:
                    print(f"  {src}:{line}: not one YAML document (two files side by side?)")
            continue
        kind = kind_of(config)
        if not kind:
            continue
        n += 1
        errors = check(f"{src}:{line}", kind, config)
        if errors:
            problems.append(f"{src}:{line} ({kind}): {describe(errors)}")
        else:
            ok += 1
        if VERBOSE:
            print(f"  {src}:{line} ({kind}): {'ok' if not errors else describe(errors)}")
    print(f"\ndocs ({', '.join(DOC_SOURCES)} yaml blocks): {n} checked, {ok} passed"
          f"{f'; {unparsed} blocks with a kind are not one YAML document (side by side), skipped' if unparsed else ''}")

    # The parsers' unit tests.
    valid_n = valid_ok = 0
    refused, accepted = [], []
    for src, line, kind, config, valid in cpp_configs():
        errors = check(f"{src}:{line}", kind, config)
        text = json.dumps(config, separators=(",", ":"))
        if valid:
            valid_n += 1
            if errors:
                problems.append(f"{src}:{line} ({kind}) the parser accepts {text}, the schema refuses it: "
                                f"{describe(errors)}")
            else:
                valid_ok += 1
        else:
            (refused if errors else accepted).append(f"{src}:{line} {text}")
    print(f"\nparsers' unit tests (drivers/tests/*.cpp, kind added): {valid_n} the parser accepts: {valid_ok} pass; "
          f"{len(refused) + len(accepted)} the parser refuses: {len(refused)} refused by the schema too, "
          f"{len(accepted)} accepted by it (left to the parser)")
    if VERBOSE:
        for a in accepted:
            print("    accepted by the schema, refused by the parser: " + a)

    # The fuzz corpus: reported only.
    fuzz = []
    for src, name, body in fuzz_configs():
        try:
            config = yaml_config(body)
        except ValueError:
            continue
        kind = kind_of(config)
        if kind:
            errors = check(f"{src} {name}", kind, config)
            fuzz.append(not errors)
    print(f"\nfuzz corpus (fuzz/corpus/project, reported only): {len(fuzz)} driver files, {sum(fuzz)} valid, "
          f"{len(fuzz) - sum(fuzz)} invalid")

    # The project's validator must agree.
    binary = project_validator()
    if binary:
        disagree = 0
        for kind in schemas:
            group = [(label, config, verdict) for label, k, config, verdict in checks if k == kind]
            if not group:
                continue
            try:
                theirs = project_verdicts(binary, os.path.join(SCHEMAS, kind + ".json"), [c for _, c, _ in group])
            except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
                problems.append(f"project validator: {e}")
                break
            for (label, config, mine), other in zip(group, theirs):
                if mine != other:
                    disagree += 1
                    problems.append(f"{label} ({kind}): this script says {'valid' if mine else 'invalid'}, "
                                    f"{os.path.relpath(binary, ROOT)} says {'valid' if other else 'invalid'}")
        print(f"\nproject validator {os.path.relpath(binary, ROOT)}: {len(checks)} verdicts compared, "
              f"{disagree} disagree")
    else:
        print("\nproject validator: not built (build/bin/flowstate, build/schema/flowstate-schema-check); "
              "this script's draft-07 subset only")

    print()
    if problems:
        print(f"FAILED: {len(problems)} problems")
        for p in problems:
            print("  " + p)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
