"""The pure-Python packages from Debian bookworm shipped in the sandbox (issue 12, item 2;
guest/debian-packages.txt). Each test drives build/brig exec in a fresh sandbox and checks the
result of real work, so it fails when a package is missing or broken.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))

# Every top-level module the packages provide (README's table lists the same set).
MODULES = [
    "openpyxl", "et_xmlfile", "jdcal", "xlsxwriter", "pypdf", "pdfminer", "reportlab", "odf",
    "defusedxml", "tabulate", "dateutil", "six", "pytz", "jinja2", "markupsafe", "yaml", "tomli",
    "markdown", "bs4", "soupsieve", "chardet", "charset_normalizer", "rich", "pygments",
    "markdown_it", "mdurl", "pyparsing", "sympy", "mpmath", "networkx", "pygal", "svgwrite",
    "segno", "plotly", "attr", "attrs", "more_itertools", "typing_extensions", "packaging", "pydantic",
    "requests", "urllib3", "idna", "certifi", "docx",
]


class DebianPackagesTest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.TemporaryDirectory(prefix="brig-home-")
        self.env = dict(os.environ, BRIG_HOME=self.home.name)
        self.env.pop("BRIG_DB", None)

    def tearDown(self):
        self.home.cleanup()

    def run_py(self, code, session=None):
        """Runs code in a fresh sandbox (or the session's) in a new brig process and returns its
        stdout (and keeps the whole result in self.result); fails the test on any error."""
        where = ["--session", session] if session else []
        p = subprocess.run([BRIG, "exec", "--json", *where, "-c", textwrap.dedent(code)],
                           capture_output=True, text=True, env=self.env, timeout=600)
        self.assertNotEqual(p.stdout, "", p.stderr)
        out = json.loads(p.stdout)
        self.assertIsNone(out.get("error"), out)
        self.assertEqual(p.returncode, 0, out)
        self.result = out
        return out["stdout"]

    def test_every_package_imports_from_the_read_only_site_packages(self):
        out = self.run_py(f"""
            import importlib, sys
            site = sys.path[-1]
            assert site.endswith("/python3.11/site-packages"), sys.path
            for name in {MODULES!r}:
                m = importlib.import_module(name)
                assert m.__file__.startswith(site + "/"), (name, m.__file__)
            try:
                open(site + "/six.py", "a")
            except OSError:
                print("read-only")
            import json
            assert json.__file__.startswith(sys.path[-1].rsplit("/", 1)[0] + "/json"), json.__file__
            print(len({MODULES!r}))
        """)
        self.assertEqual(out.split(), ["read-only", str(len(MODULES))])

    def test_xlsx_written_by_openpyxl_and_xlsxwriter_read_back(self):
        out = self.run_py("""
            import openpyxl, xlsxwriter
            wb = openpyxl.Workbook()
            ws = wb.active
            ws.title = "Sales"
            ws.append(["item", "qty"])
            ws.append(["apples", 3])
            ws.append(["pears", 4])
            ws["B4"] = "=SUM(B2:B3)"
            wb.save("/home/user/a.xlsx")
            ws = openpyxl.load_workbook("/home/user/a.xlsx")["Sales"]
            print([[c.value for c in row] for row in ws.iter_rows()])
            book = xlsxwriter.Workbook("/home/user/b.xlsx")
            sheet = book.add_worksheet("W")
            sheet.write_row(0, 0, ["x", 2.5])
            chart = book.add_chart({"type": "column"})
            chart.add_series({"values": "=W!$B$1:$B$1"})
            sheet.insert_chart("D2", chart)
            book.close()
            ws = openpyxl.load_workbook("/home/user/b.xlsx")["W"]
            print(ws["A1"].value, ws["B1"].value)
            import openpyxl.xml, sys
            print(openpyxl.xml.LXML, "lxml.etree" in sys.modules)  # openpyxl goes through lxml
        """)
        self.assertEqual(out.splitlines(), [
            "[['item', 'qty'], ['apples', 3], ['pears', 4], [None, '=SUM(B2:B3)']]", "x 2.5",
            "True True"])

    def test_pdf_made_with_reportlab_and_its_text_extracted(self):
        out = self.run_py("""
            from reportlab.lib.pagesizes import A4
            from reportlab.pdfgen import canvas
            c = canvas.Canvas("/home/user/r.pdf", pagesize=A4)
            c.drawString(72, 750, "Quarterly report from brig")
            c.showPage()
            c.drawString(72, 750, "Second page")
            c.save()
            import pypdf
            reader = pypdf.PdfReader("/home/user/r.pdf")
            print(len(reader.pages), reader.pages[0].extract_text().strip())
            from pdfminer.high_level import extract_text
            print(" ".join(extract_text("/home/user/r.pdf").split()))
        """)
        self.assertEqual(out.splitlines(), [
            "2 Quarterly report from brig", "Quarterly report from brig Second page"])

    def test_sympy_solves_and_mpmath_computes(self):
        out = self.run_py("""
            import sympy, mpmath
            x = sympy.symbols("x")
            print(sympy.solve(x**2 - 5*x + 6, x), sympy.integrate(2*x, (x, 0, 3)))
            mpmath.mp.dps = 30
            print(mpmath.nstr(mpmath.sqrt(2), 20))
        """)
        self.assertEqual(out.splitlines(), ["[2, 3] 9", "1.4142135623730950488"])

    def test_templates_markup_and_text_formats(self):
        out = self.run_py("""
            import jinja2, markupsafe, yaml, tomli, tabulate, markdown, markdown_it
            assert not hasattr(markupsafe, "_speedups")
            env = jinja2.Environment(autoescape=True)
            print(env.from_string("{% for n in names %}<b>{{ n }}</b>{% endfor %}").render(names=["a<", "b"]))
            doc = {"name": "brig", "tags": ["a", "b"], "n": {"x": 1}}
            assert yaml.safe_load(yaml.safe_dump(doc)) == doc
            print(yaml.__with_libyaml__, tomli.loads('a = 1\\n[t]\\nb = "c"')["t"]["b"])
            print(tabulate.tabulate([["a", 1], ["bb", 22]], headers=["k", "v"], tablefmt="github"))
            print(markdown.markdown("# T\\n\\n*hi*"), markdown_it.MarkdownIt().render("**b**").strip())
        """)
        self.assertEqual(out.splitlines(), [
            "<b>a&lt;</b><b>b</b>", "False c", "| k   |   v |", "|-----|-----|",
            "| a   |   1 |", "| bb  |  22 |", "<h1>T</h1>", "<p><em>hi</em></p> <p><strong>b</strong></p>"])

    def test_html_parsing_and_encodings(self):
        out = self.run_py("""
            import bs4, chardet, charset_normalizer
            soup = bs4.BeautifulSoup("<ul><li class=x>one</li><li>two</li><li class=x>three</ul>", "html.parser")
            print([li.get_text() for li in soup.select("li.x")], soup.find_all("li")[1].get_text())
            data = "Grüße aus Köln, schöne Straße und Übermut".encode("utf-8")
            print(chardet.detect(data)["encoding"], charset_normalizer.from_bytes(data).best().encoding)
        """)
        self.assertEqual(out.splitlines(), ["['one', 'three'] two", "utf-8 utf_8"])

    def test_charts_and_graphics_as_svg(self):
        out = self.run_py("""
            import pygal, svgwrite, segno, io
            chart = pygal.Bar(title="Sales")
            chart.add("apples", [1, 3, 2])
            svg = chart.render()
            assert svg.startswith(b"<?xml") and b"<svg" in svg and b"apples" in svg, svg[:200]
            print(svg.count(b'class="rect reactive tooltip-trigger"'))
            d = svgwrite.Drawing("/home/user/d.svg")
            d.add(d.circle((10, 10), 5))
            d.save()
            print("<circle" in open("/home/user/d.svg").read())
            qr = segno.make("https://example.org")
            buf = io.BytesIO()
            qr.save(buf, kind="svg")
            print(qr.version, buf.getvalue().startswith(b"<?xml"))
        """)
        self.assertEqual(out.splitlines(), ["3", "True", "2 True"])

    def session_file(self, session, path):
        p = subprocess.run([BRIG, "files", "cat", "--session", session, path],
                           capture_output=True, env=self.env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode("utf-8")

    def test_plotly_chart_as_html_and_json(self):
        # plotly is shipped in a compressed zip (fetch-debian-packages.py's ZIPPED) with its
        # plotly.js bundle and templates, read back from the zip.
        out = self.run_py("""
            import sys, time
            t = time.perf_counter()
            import plotly.graph_objects as go
            t = time.perf_counter() - t
            import plotly, plotly.io as pio
            fig = go.Figure(go.Bar(x=["north", "south", "east"], y=[12, 30, 21], name="sales"),
                            layout_title_text="Sales by region")
            pio.write_html(fig, "/home/user/inline.html", include_plotlyjs=True)
            with open("/home/user/cdn.html", "w") as f:
                f.write(fig.to_html(include_plotlyjs="cdn"))
            with open("/home/user/chart.json", "w") as f:
                f.write(fig.to_json())
            try:
                import plotly.express
            except ImportError as e:
                print(e)
            fig.show()  # the sandbox's "brig" renderer: brig.show() as HTML
            try:
                fig.to_image("png")
            except ValueError as e:
                print(str(e).split(",")[0].strip())
            print(plotly.__version__, [m for m in ("tenacity", "nbformat", "pandas") if m in sys.modules])
            print(f"{t:.2f}")
        """, session="plot")
        *lines, seconds = out.splitlines()
        print(f"\nimport plotly.graph_objects in the sandbox: {seconds} s", file=sys.stderr)
        self.assertEqual(lines, [
            "Plotly express requires pandas to be installed.",
            'Image export using the "kaleido" engine requires the kaleido package', "5.4.0 []"])
        chart = json.loads(self.session_file("plot", "/home/user/chart.json"))
        self.assertEqual([(t["type"], t["name"], t["x"], t["y"]) for t in chart["data"]],
                         [("bar", "sales", ["north", "south", "east"], [12, 30, 21])])
        self.assertEqual(chart["layout"]["title"]["text"], "Sales by region")
        self.assertIn("colorway", chart["layout"]["template"]["layout"])  # the default template
        data = '"x":["north","south","east"],"y":[12,30,21]'
        inline = self.session_file("plot", "/home/user/inline.html")
        self.assertIn(data, inline)
        self.assertIn("* plotly.js v2.6.3", inline)  # the bundle itself, from the zip
        self.assertIn("Plotly.newPlot(", inline)
        self.assertGreater(len(inline), 3_000_000)
        cdn = self.session_file("plot", "/home/user/cdn.html")
        self.assertIn(data, cdn)
        self.assertIn('<script src="https://cdn.plot.ly/plotly-2.6.3.min.js"></script>', cdn)
        self.assertLess(len(cdn), 100_000)
        (shown,) = self.result["display"]
        self.assertIn(data, shown["text/html"])
        self.assertIn('<script src="https://cdn.plot.ly/plotly-2.6.3.min.js"></script>',
                      shown["text/html"])

    def test_graphs_parsing_and_dates(self):
        out = self.run_py("""
            import networkx as nx, pyparsing as pp, datetime
            g = nx.Graph()
            g.add_weighted_edges_from([("a", "b", 1), ("b", "c", 1), ("a", "c", 5), ("c", "d", 1)])
            print(nx.shortest_path(g, "a", "d", weight="weight"))
            expr = pp.Word(pp.alphas) + "=" + pp.pyparsing_common.integer
            print(expr.parse_string("x = 42").as_list())
            from dateutil import parser, relativedelta, tz
            d = parser.parse("2024-01-31 10:00")
            print(d + relativedelta.relativedelta(months=1))
            print(d.replace(tzinfo=tz.gettz("Europe/Paris")).utcoffset())
            import pytz
            paris = pytz.timezone("Europe/Paris")
            print(paris.localize(datetime.datetime(2024, 7, 1, 12)).isoformat(), "Asia/Tokyo" in pytz.all_timezones)
        """)
        self.assertEqual(out.splitlines(), [
            "['a', 'b', 'c', 'd']", "['x', '=', 42]", "2024-02-29 10:00:00", "1:00:00",
            "2024-07-01T12:00:00+02:00 True"])

    def test_rich_pygments_and_odf(self):
        out = self.run_py("""
            import io, rich.console, rich.table, pygments, pygments.lexers, pygments.formatters
            console = rich.console.Console(file=io.StringIO(), width=40, color_system=None)
            t = rich.table.Table("k", "v")
            t.add_row("a", "1")
            console.print(t)
            print(console.file.getvalue().splitlines()[1])
            html = pygments.highlight("x = 1", pygments.lexers.PythonLexer(), pygments.formatters.HtmlFormatter())
            print('<span class="n">x</span>' in html)
            from odf.opendocument import OpenDocumentText, load
            from odf.text import P
            from odf import teletype
            doc = OpenDocumentText()
            doc.text.addElement(P(text="Hello ODF"))
            doc.save("/home/user/t.odt")
            print(teletype.extractText(load("/home/user/t.odt").text))
        """)
        self.assertEqual(out.splitlines(), ["┃ k ┃ v ┃", "True", "Hello ODF"])

    def test_libraries_other_code_expects(self):
        out = self.run_py("""
            import attrs, more_itertools, typing, typing_extensions, packaging.version, pydantic, six
            import requests, urllib3, idna
            @attrs.define
            class P:
                x: int
                y: int = 0
            print(P(1), list(more_itertools.chunked(range(5), 2)))
            print(packaging.version.Version("1.10") > packaging.version.Version("1.9"))
            class M(pydantic.BaseModel):
                n: int
                tags: typing.List[str] = []
            print(M(n="3").n, pydantic.VERSION, pydantic.compiled)
            try:
                M(n="x")
            except pydantic.ValidationError as e:
                print(e.errors()[0]["type"])
            print(requests.Request("GET", "http://example.org/a", params={"q": "1 2"}).prepare().url)
            print(urllib3.util.parse_url("https://h:8080/p").port, idna.encode("bücher.de"))
        """)
        self.assertEqual(out.splitlines(), [
            "P(x=1, y=0) [[0, 1], [2, 3], [4]]", "True", "3 1.10.4 False",
            "type_error.integer", "http://example.org/a?q=1+2", "8080 b'xn--bcher-kva.de'"])


if __name__ == "__main__":
    unittest.main()
