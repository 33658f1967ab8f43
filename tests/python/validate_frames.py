"""Validates JSON lines of frame metadata against docs/schema/frame-v1.json with the independent
`jsonschema` validator; prints `valid N` or the first failures, exit 1 on any."""
import json
import pathlib
import sys

import jsonschema

schema = json.loads((pathlib.Path(__file__).parents[2] / "docs/schema/frame-v1.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
failures, count = [], 0
for number, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    count += 1
    for error in validator.iter_errors(json.loads(line)):
        failures.append(f"line {number}: {error.json_path}: {error.message}")
if failures:
    print("\n".join(failures[:20]))
    sys.exit(1)
print(f"valid {count}")
