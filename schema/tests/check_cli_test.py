"""`schema check` end to end: NDJSON in, one JSON line out per instance,
exit 0 with invalid instances, exit 2 with the reason on a bad schema."""
import json
import os
import subprocess
import sys
import tempfile

binary = sys.argv[1]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def run(args, stdin):
    p = subprocess.run([binary, "schema", "check", *args], input=stdin.encode(), capture_output=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


with tempfile.TemporaryDirectory() as tmp:
    def write(name, value):
        path = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))
        return path

    schema = write("s.json", {"type": "object", "required": ["f"], "properties": {"f": {"maximum": 10}}})
    code, out, err = run([schema], '{"f": 1}\n{"f": 11}\n\n{}\nnot json\n{"f": 2}')
    lines = [json.loads(line) for line in out.splitlines()]
    check(code == 0, f"exit code 0 with invalid instances, got {code}: {err}")
    check(len(lines) == 5, f"one line per non-empty input line, got {len(lines)}")
    check(lines[0] == {"valid": True}, f"first line valid: {lines[0]}")
    check(lines[1] == {"valid": False, "errors": [{"instanceLocation": "/f", "keywordLocation": "/properties/f/maximum",
                                                     "keyword": "maximum", "error": "11 is greater than the maximum of 10"}]},
          f"second line: {lines[1]}")
    check(lines[2]["errors"][0]["keyword"] == "required", f"third line: {lines[2]}")
    check(lines[3]["valid"] is False and "not valid JSON" in lines[3]["errors"][0]["error"], f"fourth: {lines[3]}")
    check(lines[4] == {"valid": True}, f"last line without a newline: {lines[4]}")

    bad = write("bad.json", {"properties": {"a": {"minimum": "x"}}})
    code, out, err = run([bad], "{}\n")
    check(code == 2, f"exit code 2 on a bad schema, got {code}")
    check('/properties/a/minimum: expected a number, got "x"' in err, f"message on stderr: {err!r}")
    check(out == "", "nothing on stdout for a bad schema")

    write("remote/int.json", {"type": "integer"})
    mapped = write("mapped.json", {"items": {"$ref": "http://example.test/schemas/int.json"}})
    code, out, err = run([mapped, "--map", "http://example.test/schemas/=" + os.path.join(tmp, "remote")], "[1, 2.5]\n")
    check(code == 0 and json.loads(out)["errors"][0]["instanceLocation"] == "/1", f"--map: {code} {out} {err}")
    code, out, err = run([mapped], "[1]\n")
    check(code == 2 and "http://example.test/schemas/int.json" in err, f"unmapped remote ref refused: {code} {err}")

    sibling = write("uses_sibling.json", {"$ref": "remote/int.json"})
    code, out, err = run([sibling], "1\n\"x\"\n")
    check(code == 0 and [json.loads(l)["valid"] for l in out.splitlines()] == [True, False], f"relative file ref: {out} {err}")

    d7 = write("d7.json", {"items": [{"type": "string"}]})
    code, out, _ = run([d7, "--draft", "07"], "[1]\n")
    check(json.loads(out)["errors"][0]["keywordLocation"] == "/items/0/type", f"--draft 07: {out}")

    fmt = write("fmt.json", {"format": "ipv4"})
    code, out, _ = run([fmt], '"999.1.1.1"\n')
    check(json.loads(out) == {"valid": True}, "format is an annotation by default")
    code, out, _ = run([fmt, "--format-assertion"], '"999.1.1.1"\n')
    check(json.loads(out)["errors"][0]["keyword"] == "format", f"--format-assertion: {out}")

sys.exit(1 if failures else 0)
