# A test fixture in nanoGPT's layout (written for darwin-bot's tests, not nanoGPT's code).
# Run by train.py as exec(open('configurator.py').read()): each argument is either a
# config file to execute, or --key=value overriding a global train.py already defines.
import sys
from ast import literal_eval

for _arg in sys.argv[1:]:
    if not _arg.startswith("--"):
        exec(open(_arg).read())  # noqa: SIM115 - nanoGPT's idiom
        continue
    _key, _, _text = _arg[2:].partition("=")
    if _key not in globals():
        raise ValueError(f"Unknown config key: {_key}")
    try:
        _value = literal_eval(_text)
    except (SyntaxError, ValueError):
        _value = _text
    assert type(_value) is type(globals()[_key]), f"{_key}: wrong type"
    globals()[_key] = _value
