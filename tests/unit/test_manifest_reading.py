"""Users' own manifests as every command reads them (``lint --mesh``, ``local up --manifests``, ``translate
--manifests``): variables expanded as the article's shell heredocs are. Each rule has its failing case and its
passing twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.errors import IstioConfigError
from meshbridge.istio.parse import expand_env, load_documents, parse_yaml_text, referenced_env
from tests.builders import ARTICLE

ARTICLE_GKE = (ARTICLE / "gke.yaml").read_text()
BRACED = "${HOST_GW_CLUSTER2}"
BARE = "$HOST_GW_CLUSTER2"


def one(text: str, env: dict[str, str]) -> str:
    return expand_env(text, env, "eks.yaml")


def refusal(text: str, env: dict[str, str]) -> str:
    with pytest.raises(IstioConfigError) as e:
        expand_env(text, env, "eks.yaml")
    return str(e.value)


# -- variables: what a shell heredoc does ------------------------------------------------------------------


def test_bare_and_braced_variables_both_expand() -> None:
    env = {"HOST": "ingress.eks.example.com"}
    assert one("address: $HOST\n", env) == one("address: ${HOST}\n", env) == "address: ingress.eks.example.com\n"
    assert one("host: $HOST.\n", env) == "host: ingress.eks.example.com.\n"  # the name ends where a shell's does
    assert one("host: ${HOST}x\n", env) == "host: ingress.eks.example.comx\n"


def test_an_escaped_dollar_stays_literal_and_its_twin_expands() -> None:
    env = {"HOST": "h"}
    assert one("a: \\$HOST\n", env) == "a: $HOST\n"  # as the heredoc prints it: the backslash goes
    assert one("a: \\${HOST}\n", env) == "a: ${HOST}\n"
    assert one("a: \\$UNSET\n", {}) == "a: $UNSET\n"  # escaped: not a reference, so not an error
    assert one("a: $HOST\n", env) == "a: h\n"


def test_an_unset_variable_names_the_variable_the_file_and_the_line() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: $LB_HOST\n  b: ${LB_HOST}\n  c: $OTHER\n"
    message = refusal(text, {})
    assert message.startswith("eks.yaml:4: $LB_HOST is not set (also unset: line 5 ${LB_HOST}, line 6 $OTHER)")
    assert "Fix: export LB_HOST=<value> and export OTHER=<value>" in message
    assert one(text, {"LB_HOST": "x", "OTHER": "y"}).endswith("  a: x\n  b: x\n  c: y\n")  # the twin: set


def test_a_variable_set_empty_expands_to_nothing() -> None:
    assert one("a: x$EMPTY\n", {"EMPTY": ""}) == "a: x\n"


def test_shell_forms_meshbridge_does_not_evaluate_are_refused_not_kept() -> None:
    for form in ("${HOST:-ingress}", "${#HOST}", "${HOST/a/b}", "${HOST"):
        message = refusal(f"a: {form}\n", {"HOST": "h"})
        assert message.startswith(f"eks.yaml:1: {form}: meshbridge expands only $VAR and ${{VAR}}")
        assert "Fix: export HOST=<value> and write ${HOST}" in message and f"or write \\{form}" in message
        assert one(f"a: \\{form}\n", {"HOST": "h"}) == f"a: {form}\n"  # the twin: escaped, kept literally


def test_dollars_that_are_no_variable_are_kept() -> None:
    text = 'regex: "^/v[0-9]+$"\nargs: ["--pod=$(POD_NAME)"]\nreplacement: $1:$2\nprice: ${1}\nend: $\n'
    assert one(text, {}) == text  # regex anchors, Kubernetes' $(VAR), positional parameters


def test_full_line_comments_are_left_alone_but_values_are_not() -> None:
    comment = "# export LB_HOST=... before applying; $LB_HOST is the exporter's load balancer\na: 1\n"
    assert one(comment, {}) == comment
    assert "$LB_HOST is not set" in refusal("a: 1  # trailing comments are the line's: $LB_HOST\n", {})


def test_every_reader_expands_the_same_way(tmp_path: Path) -> None:
    """``load_documents`` is the one reader: ``$VAR`` expands in every file of a folder, with or without env."""
    folder = tmp_path / "eks"
    folder.mkdir()
    (folder / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {h: $LB}\n")
    (folder / "b.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {h: ${LB}}\n")
    docs = load_documents([folder], {"LB": "lb.example.com"})
    assert [d["data"]["h"] for _, d in docs] == ["lb.example.com", "lb.example.com"]
    with pytest.raises(IstioConfigError, match=r"a\.yaml:4: \$LB is not set"):
        load_documents([folder], {})


def test_the_process_environment_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "eks.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {h: $LB}\n")
    monkeypatch.setenv("LB", "from-the-shell")
    ((_, d),) = load_documents([f])
    assert d["data"]["h"] == "from-the-shell"
    monkeypatch.delenv("LB")
    with pytest.raises(IstioConfigError, match=r"\$LB is not set"):
        load_documents([f])


def test_a_reload_expands_bare_variables_as_up_did(tmp_path: Path) -> None:
    """``local up`` records the variables its manifests use; ``$VAR`` counts as ``${VAR}`` does."""
    f = tmp_path / "gke.yaml"
    f.write_text("# $IN_A_COMMENT\na: $BARE\nb: ${BRACED}\nc: \\$ESCAPED\n")
    env = {"BARE": "1", "BRACED": "2", "ESCAPED": "3", "IN_A_COMMENT": "4", "UNUSED": "5"}
    assert referenced_env([f], env) == {"BARE": "1", "BRACED": "2"}


@pytest.mark.parametrize("spelling", [BRACED, BARE])
def test_lint_reads_the_article_with_either_spelling(
    spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The endpoint address is the exporter's load balancer once expanded (no MB305); a wrong value is MB305."""
    f = tmp_path / "gke.yaml"
    f.write_text(ARTICLE_GKE.replace(BRACED, spelling))
    args = ["lint", "-f", str(ARTICLE / "bridge.yaml"), "--mesh", f"eks={ARTICLE / 'eks.yaml'}", "--mesh", f"gke={f}"]
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(args) == 0
    assert "0 errors" in capsys.readouterr().err
    monkeypatch.setenv("HOST_GW_CLUSTER2", "elsewhere.example.com")  # the twin: expanded to the wrong host
    assert main(args) == 1
    assert "MB305" in capsys.readouterr().out


def _commands(tmp_path: Path, manifest: Path) -> dict[str, list[str]]:
    return {
        "lint": ["lint", "--mesh", f"gke={manifest}"],
        "local up": ["local", "up", "--manifests", f"gke={manifest}"],
        "translate": ["translate", "--proxy", "gke/sleep", "--manifests", f"gke={manifest}"],
    }


@pytest.mark.parametrize("command", ["lint", "local up", "translate"])
@pytest.mark.parametrize("spelling", [BRACED, BARE])
def test_an_unset_variable_stops_every_command_with_the_same_message(
    command: str, spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOST_GW_CLUSTER2", raising=False)
    assert main(["init"]) == 0
    manifest = tmp_path / "gke.yaml"
    manifest.write_text(ARTICLE_GKE.replace(BRACED, spelling))
    line = next(i for i, text in enumerate(ARTICLE_GKE.splitlines(), 1) if BRACED in text and "#" not in text)
    capsys.readouterr()
    assert main(_commands(tmp_path, manifest)[command]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{manifest}:{line}: {spelling} is not set" in err
    assert "Fix: export HOST_GW_CLUSTER2=<value>" in err
    assert not (tmp_path / ".meshbridge" / "pki").exists()  # refused before anything was done


def test_text_parsed_without_a_file_is_not_expanded_twice() -> None:
    """``parse_yaml_text`` is the YAML step alone; expansion happened once, in ``load_documents``."""
    ((_, d),) = parse_yaml_text("a: $HOST\n", "x.yaml")
    assert d == {"a": "$HOST"}
