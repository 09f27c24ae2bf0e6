"""lxml and python-docx inside brig (issue 12, item 2): Debian's lxml with libxml2 and libxslt,
built into the guest (guest/build-lxml.sh), and python-docx from Debian's package. Each test
drives build/brig exec and checks the result of real work: parsing, serialising, XPath, XSLT,
hostile documents (entity expansion, deep nesting, external entities that name host files or
the network), and a .docx written, read back and kept with its session.
"""
import io
import json
import os
import socket
import subprocess
import tempfile
import textwrap
import unittest
import zipfile

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


class LxmlTest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.TemporaryDirectory(prefix="brig-home-")
        self.env = dict(os.environ, BRIG_HOME=self.home.name)
        self.env.pop("BRIG_DB", None)

    def tearDown(self):
        self.home.cleanup()

    def run_py(self, code, session=None):
        """Runs code in a fresh sandbox (or the session's) in a new brig process and returns its
        stdout; fails the test on any error."""
        where = ["--session", session] if session else []
        p = subprocess.run([BRIG, "exec", "--json", *where, "-c", textwrap.dedent(code)],
                           capture_output=True, text=True, env=self.env, timeout=600)
        self.assertNotEqual(p.stdout, "", p.stderr)
        out = json.loads(p.stdout)
        self.assertIsNone(out.get("error"), out)
        self.assertEqual(p.returncode, 0, out)
        return out["stdout"]

    def session_file(self, session, path):
        p = subprocess.run([BRIG, "files", "cat", "--session", session, path],
                           capture_output=True, env=self.env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_etree_parses_serialises_and_queries_with_xpath(self):
        out = self.run_py("""
            import sys
            assert "lxml" not in sys.modules  # not in the image: imported on first use
            from lxml import etree, html
            print(etree.LXML_VERSION, etree.LIBXML_VERSION, etree.LIBXSLT_VERSION)
            root = etree.fromstring(
                '<shop xmlns:p="urn:price"><item id="1">tea<p:cost>3.5</p:cost></item>'
                '<item id="2">caf\u00e9<p:cost>2</p:cost></item></shop>')
            ns = {"p": "urn:price"}
            print(root.xpath("sum(//p:cost)", namespaces=ns),
                  root.xpath("//item[p:cost > 2]/@id", namespaces=ns),
                  [e.text for e in root.iterfind("item")])
            new = etree.SubElement(root, "item", id="3")
            new.text = "<milk> & honey"
            print(etree.tostring(root, encoding="unicode"))
            print(etree.tostring(etree.fromstring("<a><b/></a>"), pretty_print=True,
                                 xml_declaration=True, encoding="UTF-8").decode())
            try:
                etree.fromstring("<a><b></a>")
            except etree.XMLSyntaxError as e:
                print("syntax error:", e.lineno)
            page = html.fromstring("<p>Hi <a href='/x'>there</a><p>two")
            print(page.text_content(), [a.get("href") for a in page.iter("a")])
        """)
        self.assertEqual(out.splitlines(), [
            "(4, 9, 2, 0) (2, 9, 14) (1, 1, 35)",
            "5.5 ['1'] ['tea', 'caf\u00e9']",
            '<shop xmlns:p="urn:price"><item id="1">tea<p:cost>3.5</p:cost></item>'
            '<item id="2">caf\u00e9<p:cost>2</p:cost></item>'
            '<item id="3">&lt;milk&gt; &amp; honey</item></shop>',
            "<?xml version='1.0' encoding='UTF-8'?>", "<a>", "  <b/>", "</a>", "",
            "syntax error: 1",
            "Hi theretwo ['/x']"])

    def test_xslt_transform(self):
        out = self.run_py("""
            from lxml import etree
            xslt = etree.XSLT(etree.XML('''
              <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                              xmlns:str="http://exslt.org/strings" extension-element-prefixes="str">
                <xsl:param name="title"/>
                <xsl:template match="/">
                  <table title="{$title}">
                    <xsl:for-each select="people/person">
                      <xsl:sort select="@age" data-type="number"/>
                      <tr><td><xsl:value-of select="str:padding(2, '*')"/><xsl:value-of select="@name"/></td>
                          <td><xsl:value-of select="@age * 2"/></td></tr>
                    </xsl:for-each>
                  </table>
                </xsl:template>
              </xsl:stylesheet>'''))
            doc = etree.XML('<people><person name="ann" age="40"/><person name="bo" age="7"/></people>')
            result = xslt(doc, title=etree.XSLT.strparam("ages"))
            print(etree.tostring(result, encoding="unicode"))
        """)
        self.assertEqual(out.strip(),
                         '<table title="ages"><tr><td>**bo</td><td>14</td></tr>'
                         '<tr><td>**ann</td><td>80</td></tr></table>')

    def test_hostile_documents_fail_as_python_errors_and_the_session_survives(self):
        self.run_py("kept = 42", session="hostile")
        out = self.run_py(f"""
            from lxml import etree
            bomb = {BOMB!r}
            try:
                etree.fromstring(bomb)
            except etree.XMLSyntaxError as e:
                print("refused:", "entity" in str(e))
            # Asking for huge trees lifts libxml2's limits: the expansion then runs into the
            # sandbox's memory limit, which is a MemoryError, not the end of the session.
            try:
                len(etree.fromstring(bomb, etree.XMLParser(huge_tree=True)).text)
            except MemoryError:
                print("huge: MemoryError")
            deep = "<a>" * 100000 + "</a>" * 100000
            try:
                etree.fromstring(deep)
            except etree.XMLSyntaxError as e:
                print("deep refused:", "depth" in str(e))
            tree = etree.fromstring(deep, etree.XMLParser(huge_tree=True))
            print("deep huge:", sum(1 for _ in tree.iter()))
            del tree
        """, session="hostile")
        self.assertEqual(out.splitlines(), ["refused: True", "huge: MemoryError",
                                            "deep refused: True", "deep huge: 100000"])
        self.assertEqual(self.run_py("print(kept)", session="hostile"), "42\n")

    def test_external_entities_reach_only_the_sandbox_files(self):
        secret = "host-secret-" + os.urandom(8).hex()
        with tempfile.TemporaryDirectory(prefix="brig-lxml-") as d:
            host_file = os.path.join(d, "secret.txt")
            with open(host_file, "w") as f:
                f.write(secret)
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            port = listener.getsockname()[1]
            try:
                out = self.run_py(f"""
                    from lxml import etree
                    def entity(url, **parser):
                        doc = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "%s">]><r>&x;</r>'
                               % url)
                        try:
                            return etree.fromstring(doc, etree.XMLParser(**parser)).text
                        except etree.XMLSyntaxError as e:
                            return "error"
                    with open("/home/user/inside.txt", "w") as f:
                        f.write("sandbox-file")
                    # Resolving external entities works (the control), on the sandbox's files.
                    print(entity("file:///home/user/inside.txt"))
                    print(entity("/home/user/inside.txt", no_network=False))
                    for url in ("file://{host_file}", "{host_file}", "file:///etc/passwd",
                                "http://127.0.0.1:{port}/x"):
                        print(entity(url), entity(url, no_network=False, load_dtd=True))
                    for how in (lambda: etree.parse("{host_file}"),
                                lambda: etree.parse("http://127.0.0.1:{port}/x")):
                        try:
                            how()
                        except OSError as e:
                            print("OSError")
                    def document(url):
                        xslt = etree.XSLT(etree.XML('''
                          <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
                            <xsl:template match="/"><r><xsl:value-of select="document('%s')"/></r></xsl:template>
                          </xsl:stylesheet>''' % url))
                        try:
                            return str(xslt(etree.XML("<x/>"))).strip().splitlines()[-1]
                        except etree.XSLTApplyError as e:
                            return "XSLTApplyError"
                    with open("/home/user/inside.xml", "w") as f:
                        f.write("<v>sandbox-doc</v>")
                    print(document("file:///home/user/inside.xml"), document("file://{host_file}"))
                """)
                try:
                    conn, _ = listener.accept()
                    conn.close()
                    self.fail("the sandbox connected to the host")
                except BlockingIOError:
                    pass
            finally:
                listener.close()
        self.assertNotIn(secret, out)
        self.assertEqual(out.splitlines(), [
            "sandbox-file", "sandbox-file",
            "None None", "None None", "None None", "None None",
            "OSError", "OSError",
            "<r>sandbox-doc</r> XSLTApplyError"])

    def test_docx_written_read_back_and_kept_with_the_session(self):
        out = self.run_py("""
            import docx
            doc = docx.Document()
            doc.add_heading("Quarterly report", level=1)
            doc.add_paragraph("Sales went up.")
            table = doc.add_table(rows=2, cols=2)
            for r, row in enumerate([("region", "sales"), ("north", "12")]):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
            doc.save("/home/user/report.docx")
            back = docx.Document("/home/user/report.docx")
            print([(p.style.name, p.text) for p in back.paragraphs])
            print([[c.text for c in row.cells] for row in back.tables[0].rows])
        """, session="doc")
        self.assertEqual(out.splitlines(), [
            "[('Heading 1', 'Quarterly report'), ('Normal', 'Sales went up.')]",
            "[['region', 'sales'], ['north', '12']]"])
        # A new brig process: the file is the session's.
        out = self.run_py("""
            import docx
            print(docx.Document("/home/user/report.docx").paragraphs[0].text)
        """, session="doc")
        self.assertEqual(out, "Quarterly report\n")
        with zipfile.ZipFile(io.BytesIO(self.session_file("doc", "/home/user/report.docx"))) as z:
            body = z.read("word/document.xml").decode()
        for text in ("Quarterly report", "Sales went up.", "<w:tbl>", "north"):
            self.assertIn(text, body)


if __name__ == "__main__":
    unittest.main()
