"""jail.conf(5): every construct of the grammar, good and bad files (no root)."""
from __future__ import annotations

import os

import pytest

from linjail.config import jailconf as jc


def params(text: str, name: str, filename: str = "jail.conf") -> dict[str, list[str]]:
    conf = jc.parse_text(text, filename)
    return dict(jc.resolve(conf, name))


def error(text: str, filename: str = "/etc/jail.conf") -> str:
    with pytest.raises(jc.JailError) as info:
        conf = jc.parse_text(text, filename)
        for name in conf.names():
            jc.resolve(conf, name)
    return info.value.message


# -- good files -----------------------------------------------------------------

def test_freebsd_manual_example() -> None:
    """jail.conf(5)'s EXAMPLES section, as written there."""
    text = """# Typical static defaults:
# Use the rc scripts to start and stop jails.  Mount jail's /dev.
exec.start = "/bin/sh /etc/rc";
exec.stop = "/bin/sh /etc/rc.shutdown jail";
exec.clean;
mount.devfs;

# Dynamic wildcard parameter:
# Base the path off the jail name.
path = "/var/jail/$name";

# A typical jail.
foo {
\thost.hostname = "foo.com";
\tip4.addr = 10.1.1.1, 10.1.1.2, 10.1.1.3;
}

# This jail overrides the defaults defined above.
bar {
\texec.start = '';
\texec.stop = '';
\tpath = /;
\tmount.nodevfs;
\tpersist;\t// Required because there are no processes
}
"""
    conf = jc.parse_text(text)
    assert conf.names() == ["foo", "bar"]
    assert jc.resolve(conf, "foo") == [
        ("name", ["foo"]), ("exec.start", ["/bin/sh /etc/rc"]),
        ("exec.stop", ["/bin/sh /etc/rc.shutdown jail"]), ("exec.clean", []),
        ("mount.devfs", []), ("path", ["/var/jail/foo"]), ("host.hostname", ["foo.com"]),
        ("ip4.addr", ["10.1.1.1", "10.1.1.2", "10.1.1.3"])]
    bar = dict(jc.resolve(conf, "bar"))
    assert bar["exec.start"] == [""] and bar["exec.stop"] == [""]
    assert bar["path"] == ["/"]
    assert "mount.nodevfs" in bar and "mount.devfs" not in bar   # same parameter, renamed
    assert bar["persist"] == []


def test_comments_of_three_kinds_anywhere_whitespace_is() -> None:
    text = ("a/* c */{ # shell\n x// c++\n = /* in */ 1 ; }\n"
            "/* several\n lines */ b { y = 2; }")
    assert params(text, "a")["x"] == ["1"]
    assert params(text, "b")["y"] == ["2"]


def test_comment_characters_inside_quotes_are_text() -> None:
    p = params('j { a = "# not // a /* comment */"; b = \'#x\'; }', "j")
    assert p["a"] == ["# not // a /* comment */"] and p["b"] == ["#x"]


def test_hash_ends_an_unquoted_token() -> None:
    assert params("j { a = foo#bar\n; }", "j")["a"] == ["foo"]


def test_equals_append_and_name_value_forms() -> None:
    p = params("j { a = 1; a += 2, 3; b 4; c; d = x, y; d += z; e = 1; e = 2; }", "j")
    assert p == {"name": ["j"], "a": ["1", "2", "3"], "b": ["4"], "c": [], "d": ["x", "y", "z"],
                 "e": ["2"]}


def test_append_to_nothing_and_plain_set_after_append() -> None:
    p = params("j { a += 1; a += 2; b = 1; b += 2; b = 3; }", "j")
    assert p["a"] == ["1", "2"] and p["b"] == ["3"]


def test_no_prefix_is_the_same_parameter() -> None:
    p = params("j { persist; nopersist; allow.raw_sockets; allow.noraw_sockets = 1; }", "j")
    assert "persist" not in p and p["nopersist"] == []
    assert p["allow.noraw_sockets"] == ["1"] and "allow.raw_sockets" not in p


def test_quoting_and_escapes() -> None:
    text = (r'j { a = "tab\there"; b = ' "'single \\n no $vars'" r'; c = "\101\x41\q";'
            r' d = \"x\"; e = "say \"hi\""; f = ""; g = ' "''" r'; h = "a\$b"; }')
    p = params(text, "j")
    assert p["a"] == ["tab\there"]
    assert p["b"] == ["single \n no $vars"]          # escapes yes, variables no
    assert p["c"] == ["AAq"]
    assert p["d"] == ['"x"']
    assert p["e"] == ['say "hi"']
    assert p["f"] == [""] and p["g"] == [""]
    assert p["h"] == ["a$b"]


def test_line_continuation_in_and_out_of_quotes() -> None:
    text = 'j { a = "one \\\ntwo"; b = three\\\nfour; c = \'x\\\ny\'; }'
    p = params(text, "j")
    assert p["a"] == ["one two"] and p["b"] == ["threefour"] and p["c"] == ["xy"]


def test_quoted_strings_may_span_lines() -> None:
    assert params('j { a = "x\ny"; }', "j")["a"] == ["x\ny"]


def test_adjacent_pieces_are_one_string() -> None:
    p = params('j { a = "/jails/"$name\'/root\'; b = pre${name}post; }', "j")
    assert p["a"] == ["/jails/j/root"] and p["b"] == ["prejpost"]


def test_unquoted_token_characters() -> None:
    p = params("j { a = A-z_0.9:<>?@[]^`|~!%&(); b = /usr/local/x; }", "j")
    assert p["a"] == ["A-z_0.9:<>?@[]^`|~!%&()"] and p["b"] == ["/usr/local/x"]


def test_lone_dollar_is_text() -> None:
    p = params('j { a = "cost $5"; b = $; c = "end$"; }', "j")
    assert p["a"] == ["cost $5"] and p["b"] == ["$"] and p["c"] == ["end$"]


def test_variables_and_parameters_substitute() -> None:
    text = """
$parentdir = "/var/jail";
path = "$parentdir/$name";
j { host.hostname = "${name}.example.org"; exec.start = "echo ${host.hostname}"; }
"""
    p = params(text, "j")
    assert p["path"] == ["/var/jail/j"]
    assert p["host.hostname"] == ["j.example.org"]
    assert p["exec.start"] == ["echo j.example.org"]
    assert "parentdir" not in p and "$parentdir" not in p     # variables are not parameters


def test_forward_reference_resolves() -> None:
    p = params('j { a = "$b!"; b = "${c}x"; c = 1; }', "j")
    assert p["a"] == ["1x!"]


def test_variable_in_single_quotes_is_literal() -> None:
    assert params("j { a = '$name'; }", "j")["a"] == ["$name"]


def test_array_variable_alone_expands_to_the_list() -> None:
    p = params("$addrs = 198.51.100.1, 198.51.100.2; j { ip4.addr = $addrs; }", "j")
    assert p["ip4.addr"] == ["198.51.100.1", "198.51.100.2"]


def test_substitution_is_per_jail_even_from_wildcards() -> None:
    text = 'path = "/j/$name"; a { } b { path = /other; } c { }'
    conf = jc.parse_text(text)
    assert dict(jc.resolve(conf, "a"))["path"] == ["/j/a"]
    assert dict(jc.resolve(conf, "b"))["path"] == ["/other"]
    assert dict(jc.resolve(conf, "c"))["path"] == ["/j/c"]


def test_wildcard_order_decides_who_wins() -> None:
    text = "* { x = before; } j { x = own; y = own; } * { y = after; }"
    p = params(text, "j")
    assert p["x"] == ["own"] and p["y"] == ["after"]


def test_global_statements_after_a_jail_apply_to_it_last() -> None:
    p = params("j { x = own; } x = global;", "j")
    assert p["x"] == ["global"]


def test_partial_wildcards_match_hierarchical_names() -> None:
    conf = jc.parse_text("foo.* { x = 1; } foo.bar { } foo.bar.baz { } other { }")
    assert dict(jc.resolve(conf, "foo.bar"))["x"] == ["1"]
    assert dict(jc.resolve(conf, "foo.bar.baz"))["x"] == ["1"]
    assert "x" not in dict(jc.resolve(conf, "other"))
    assert jc.wild_match("a.b", "*.b") and not jc.wild_match("a.c", "*.b")


def test_nested_definitions_name_children() -> None:
    conf = jc.parse_text("outer { a = 1; inner { b = 2; } }")
    assert conf.names() == ["outer", "outer.inner"]
    assert dict(jc.resolve(conf, "outer.inner"))["b"] == ["2"]


def test_numeric_definition_is_the_jid_and_may_be_named() -> None:
    assert params("5309 { host.hostname = ${name}; }", "5309") == {
        "jid": ["5309"], "name": ["5309"], "host.hostname": ["5309"]}
    assert params("5309 { name = basejail; }", "5309")["name"] == ["basejail"]


def test_quoted_jail_name_and_empty_statements() -> None:
    conf = jc.parse_text(';;"www" { ; a = 1;; } ;')
    assert conf.names() == ["www"]


def test_a_name_defined_twice_is_one_jail() -> None:
    assert params("j { a = 1; } j { b = 2; }", "j") == {"name": ["j"], "a": ["1"], "b": ["2"]}


def test_empty_file_and_only_comments() -> None:
    assert jc.parse_text("").names() == []
    assert jc.parse_text("# nothing\n/* at */ // all\n").names() == []


def test_include_literal_glob_relative_and_inside_a_jail(tmp_path: object) -> None:
    base = str(tmp_path)
    os.makedirs(os.path.join(base, "jail.conf.d"))
    with open(os.path.join(base, "jail.conf.d", "b.conf"), "w") as f:
        f.write("b { x = 2; }\n")
    with open(os.path.join(base, "jail.conf.d", "a.conf"), "w") as f:
        f.write("a { x = 1; }\n")
    with open(os.path.join(base, "common"), "w") as f:
        f.write("y = common;\n")
    main = os.path.join(base, "jail.conf")
    with open(main, "w") as f:
        f.write('.include "jail.conf.d/*.conf";\n'
                '.include "nothing.d/*.conf";\n'           # a glob may match nothing
                f'.include "{base}/optional[.]conf";\n'     # FreeBSD's optional-file idiom
                'c { .include "common"; }\n')
    conf = jc.parse_file(main)
    assert conf.names() == ["a", "b", "c"]                 # glob(3) order
    assert dict(jc.resolve(conf, "c"))["y"] == ["common"]
    assert "y" not in dict(jc.resolve(conf, "a"))


def test_stdin_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("j { a = 1; }"))
    assert jc.parse_file("-").names() == ["j"]


# -- bad files: one line naming the file, the line and what was expected ------------

@pytest.mark.parametrize("text, message", [
    ("j { a = 1 }", '/etc/jail.conf line 1: }: syntax error (expected ";")'),
    ("j { a = 1;\n  b = 2\n}\n", '/etc/jail.conf line 3: }: syntax error (expected ";")'),
    ("j { a = 1;", '/etc/jail.conf: unexpected EOF (expected "}")'),
    ("a = 1", '/etc/jail.conf: unexpected EOF (expected ";")'),
    ("}", "/etc/jail.conf line 1: }: syntax error (expected a jail name or a parameter)"),
    ("j { = 1; }", "/etc/jail.conf line 1: =: syntax error (expected a jail name or a "
                   "parameter)"),
    ("j { a = ; }", "/etc/jail.conf line 1: ;: syntax error (expected a value)"),
    ("j { a = 1,; }", "/etc/jail.conf line 1: ;: syntax error (expected a value)"),
    ("j { a = b c; }", '/etc/jail.conf line 1: c: syntax error (expected ";")'),
    ("j { a = 1 { } }", '/etc/jail.conf line 1: {: syntax error (expected ";")'),
    ("j { a b { } }", '/etc/jail.conf line 1: {: syntax error (expected ";")'),
    ("j { a = \u00e9; }", "/etc/jail.conf line 1: \u00e9: syntax error (expected a value)"),
    ('j {\n a = "open;\n}', "/etc/jail.conf line 2: unterminated string"),
    ("j {\n a = 'open;\n}", "/etc/jail.conf line 2: unterminated string"),
    ("j { }\n/* open", "/etc/jail.conf line 2: unterminated comment"),
    ('j { a = ${open;\n }', "/etc/jail.conf line 1: unterminated variable"),
    ('j { a = "${open"; }', "/etc/jail.conf line 1: unterminated variable"),
    ("j { a = ${x\n}; }", "/etc/jail.conf line 1: unterminated variable"),
])
def test_syntax_errors(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize("text, message", [
    ('j { a = "$nothing"; }', 'j: a: variable "nothing" not found'),
    ("j { a = $persist; persist; }", 'j: a: variable "persist" not found'),
    ("j { a = $b; b = $a; }", "j: a: variable loop"),
    ("j { a = $a; }", "j: a: variable loop"),
    ('$l = 1, 2; j { a = "x$l"; }', "j: a: array cannot be substituted inline"),
    ("$l = 1, 2; j { a = $l$l; }", "j: a: array cannot be substituted inline"),
    ("j { name = other; }", 'j: cannot redefine parameter "name".'),
    ("5 { jid = 6; }", '5: cannot redefine parameter "jid".'),
    ("$x = 1; j { x = 2; }", 'j: variable "$x" cannot have the same name as a parameter.'),
    ("j { $path = 1; }", 'j: variable "$path" cannot have the same name as a parameter.'),
])
def test_resolution_errors_name_the_jail(text: str, message: str) -> None:
    assert error(text) == message


def test_include_errors(tmp_path: object) -> None:
    base = str(tmp_path)
    main = os.path.join(base, "jail.conf")
    with open(main, "w") as f:
        f.write('.include "missing.conf";\n')
    with pytest.raises(jc.JailError) as info:
        jc.parse_file(main)
    assert info.value.message == f"{base}/missing.conf: No such file or directory"
    with open(main, "w") as f:
        f.write('\n.include "$dir/x.conf";\n')
    with pytest.raises(jc.JailError) as info:
        jc.parse_file(main)
    assert info.value.message == (f"{main} line 2: variables not permitted in '.include' "
                                  f"filename")
    with open(main, "w") as f:
        f.write('.include "jail.conf";\n')                 # includes itself
    with pytest.raises(jc.JailError) as info:
        jc.parse_file(main)
    assert info.value.message == "maximum include depth exceeded"
    sub = os.path.join(base, "bad.conf")
    with open(sub, "w") as f:
        f.write("x {\n y = 1\n}\n")
    with open(main, "w") as f:
        f.write('.include "bad.conf";\n')
    with pytest.raises(jc.JailError) as info:
        jc.parse_file(main)
    assert info.value.message == f'{sub} line 3: }}: syntax error (expected ";")'


def test_missing_file() -> None:
    with pytest.raises(jc.JailError) as info:
        jc.parse_file("/nonexistent/jail.conf")
    assert info.value.message == "/nonexistent/jail.conf: No such file or directory"


def test_unknown_jail() -> None:
    with pytest.raises(jc.JailError) as info:
        jc.resolve(jc.parse_text("a { }"), "b")
    assert info.value.message == '"b" not found'
