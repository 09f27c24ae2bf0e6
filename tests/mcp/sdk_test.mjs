// brig's MCP server, driven by the official MCP TypeScript SDK clients over stdio
// (`brig mcp`) and over streamable HTTP (`brig serve`'s POST /mcp, with a bearer token):
// @modelcontextprotocol/sdk 1.x (the 2025 revisions, through initialize) and
// @modelcontextprotocol/client 2.x pinned to 2026-07-28 (server/discover, per-request _meta,
// the mirrored HTTP headers, subscriptions/listen).
// Run by run_sdk_test.sh (ctest: mcp_sdk) after `npm ci`. Environment: BRIG_BIN, WORK (a
// fresh directory). Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Client as ModernClient, StreamableHTTPClientTransport as ModernHttpTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport as ModernStdioTransport } from "@modelcontextprotocol/client/stdio";

const BRIG = process.env.BRIG_BIN;
const WORK = process.env.WORK;
assert.ok(BRIG && WORK, "BRIG_BIN and WORK must be set");

// A valid 1x1 PNG (the guest has no PIL: the code writes these bytes).
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const TOOLS = ["run_python", "read_file", "write_file", "edit_file", "list_files", "glob", "grep", "delete_file",
  "reset_session", "fork_session", "list_sessions"];

function textOf(result) {
  return result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

async function conversation(client, label, { httpBase, headers } = {}) {
  const log = (m) => console.log(`[${label}] ${m}`);
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOLS].sort());
  for (const t of tools) {
    assert.equal(t.inputSchema.type, "object", t.name);
    assert.ok(t.outputSchema, `${t.name} has an outputSchema`);
    assert.ok(t.annotations && typeof t.annotations.readOnlyHint === "boolean", `${t.name} annotations`);
  }
  log(`listed ${tools.length} tools`);

  // The seed's three steps, in one session that the first call makes.
  const run = (code, session_id) =>
    client.callTool({ name: "run_python", arguments: session_id ? { code, session_id } : { code } });
  const r1 = await run("x = 42; y = 100\ndef calculate(): return x + y\nprint(f'Sum: {calculate()}')");
  assert.equal(r1.isError, false, textOf(r1));
  assert.equal(r1.structuredContent.stdout, "Sum: 142\n");
  const sid = r1.structuredContent.session_id;
  assert.match(sid, /^mcp-[0-9a-f]{16}$/);
  const r2 = await run("print(calculate())\nx = 50", sid);
  assert.equal(r2.structuredContent.stdout, "142\n", textOf(r2));
  const r3 = await run("calculate()", sid);
  assert.equal(r3.structuredContent.result, "150", textOf(r3));
  assert.match(textOf(r3), /150/);
  log(`seed example: Sum: 142 / 142 / 150 in session ${sid}`);

  // An exception is a tool result with isError and the traceback.
  const bad = await run("def f():\n    return 1 / 0\nf()", sid);
  assert.equal(bad.isError, true);
  assert.match(textOf(bad), /Traceback \(most recent call last\)/);
  assert.match(textOf(bad), /ZeroDivisionError: division by zero/);
  assert.equal(bad.structuredContent.error.type, "ZeroDivisionError");
  log("exception -> isError with traceback");

  // A file made by code, read back with read_file; one written by write_file, read by code.
  const made = await run("open('/home/user/notes.txt', 'w').write('hello from python\\n')", sid);
  assert.equal(made.isError, false, textOf(made));
  const info = made.structuredContent.files.find((f) => f.path === "/home/user/notes.txt");
  assert.ok(info, JSON.stringify(made.structuredContent));
  assert.equal(info.size, 18);
  assert.equal(info.content_type, "text/plain");
  const link = made.content.find((c) => c.type === "resource_link");
  assert.ok(link && link.uri, "a resource link to the new file");
  const back = await client.callTool({ name: "read_file", arguments: { session_id: sid, path: "/home/user/notes.txt" } });
  assert.equal(back.isError, false);
  assert.equal(textOf(back), "hello from python\n");
  if (httpBase) {
    // The link is a signed URL of the server: it downloads the file without the token.
    assert.ok(link.uri.startsWith(httpBase + "/files/"), link.uri);
    const res = await fetch(link.uri);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "hello from python\n");
  } else {
    const res = await client.readResource({ uri: link.uri });
    assert.equal(res.contents[0].text, "hello from python\n");
  }
  const w = await client.callTool({
    name: "write_file", arguments: { session_id: sid, path: "/home/user/in.csv", content: "a,b\n1,2\n" } });
  assert.equal(w.isError, false, textOf(w));
  const csv = await run("open('/home/user/in.csv').read().splitlines()[1]", sid);
  assert.equal(csv.structuredContent.result, "'1,2'");
  const edited = await client.callTool({
    name: "edit_file", arguments: { session_id: sid, path: "/home/user/in.csv", old_string: "1,2", new_string: "3,4" } });
  assert.equal(edited.structuredContent.replacements, 1);
  const found = await client.callTool({ name: "grep", arguments: { session_id: sid, pattern: "^3,4$" } });
  assert.equal(found.structuredContent.files[0].path, "/home/user/in.csv");
  log("file made by code read back; write/edit/grep");

  // An image the code writes comes back as image content.
  const img = await run(`import base64\nopen('/home/user/out.png', 'wb').write(base64.b64decode('${PNG}'))`, sid);
  assert.equal(img.isError, false, textOf(img));
  const image = img.content.find((c) => c.type === "image");
  assert.ok(image, JSON.stringify(img.content).slice(0, 500));
  assert.equal(image.mimeType, "image/png");
  assert.equal(image.data, PNG);
  log("image content back");

  // An image the code shows (brig.show) comes back as image content too, with no file.
  const shown = await run(`import base64, brig\nbrig.show(base64.b64decode('${PNG}'))\nbrig.show('<b>t</b>', mime='text/html')`, sid);
  assert.equal(shown.isError, false, textOf(shown));
  const shownImage = shown.content.find((c) => c.type === "image");
  assert.ok(shownImage, JSON.stringify(shown.content).slice(0, 500));
  assert.equal(shownImage.data, PNG);
  assert.equal(shown.structuredContent.display.length, 2);
  assert.deepEqual(shown.structuredContent.display[1].mime_types, ["text/html"]);
  log("shown image back");

  // Fork, reset, list.
  const fork = await client.callTool({ name: "fork_session", arguments: { session_id: sid } });
  const copy = fork.structuredContent.session_id;
  const inCopy = await run("calculate()", copy);
  assert.equal(inCopy.structuredContent.result, "150");
  const reset = await client.callTool({ name: "reset_session", arguments: { session_id: sid } });
  assert.equal(reset.isError, false);
  const gone = await run("calculate()", sid);
  assert.equal(gone.isError, true);
  assert.match(textOf(gone), /NameError/);
  const list = await client.callTool({ name: "list_sessions", arguments: {} });
  const ids = list.structuredContent.sessions.map((s) => s.session_id);
  assert.ok(ids.includes(sid) && ids.includes(copy), JSON.stringify(ids));
  log("fork, reset, list_sessions");

  // A runaway print is cut, and the cut is said; a loop past timeout_s is a tool error.
  const flood = await run("print('x' * 300000)\nprint('THE END')", sid);
  assert.ok(flood.structuredContent.stdout.length < 51000, String(flood.structuredContent.stdout.length));
  assert.match(textOf(flood), /bytes of stdout cut here/);
  assert.match(flood.structuredContent.stdout, /THE END/);
  const loop = await client.callTool({ name: "run_python", arguments: { code: "while True: pass", session_id: sid, timeout_s: 1 } });
  assert.equal(loop.isError, true);
  assert.equal(loop.structuredContent.failure.kind, "timeout");
  log("output capped; timeout_s");

  // Bad input: a tool error naming the argument; an unknown tool is a protocol error.
  const wrong = await client.callTool({ name: "run_python", arguments: { code: 5 } });
  assert.equal(wrong.isError, true);
  assert.match(textOf(wrong), /'code' must be a string/);
  await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }), /unknown tool/);
  log("bad input answered");
}

async function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
}

async function overStdio() {
  const home = path.join(WORK, "stdio-home");
  fs.mkdirSync(home, { recursive: true });
  const transport = new StdioClientTransport({
    command: BRIG, args: ["mcp", "--db", `sqlite:${path.join(home, "brig.db")}`],
    env: { ...process.env, BRIG_HOME: home }, stderr: "inherit" });
  const client = new Client({ name: "brig-sdk-test", version: "1.0.0" });
  await client.connect(transport);
  assert.ok(client.getServerCapabilities().tools, "the server offers tools");
  assert.equal(client.getServerVersion().name, "brig");
  await conversation(client, "stdio");
  await client.close();
}

// The official 2.x client pinned to 2026-07-28: no initialize, everything per request.
function modernClient() {
  return new ModernClient({ name: "brig-sdk-test-modern", version: "2.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } });
}

async function modernChecks(client, label, opts) {
  const log = (m) => console.log(`[${label}] ${m}`);
  assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
  assert.equal(client.getServerVersion().name, "brig");
  assert.ok(client.getServerCapabilities().tools, "the server offers tools");
  log("server/discover: 2026-07-28 negotiated");
  await conversation(client, label, opts);
  // brig's lists never change: the subscription honours nothing and ends gracefully.
  const sub = await client.listen({ toolsListChanged: true, resourcesListChanged: true });
  assert.deepEqual(sub.honoredFilter, {});
  assert.equal(await sub.closed, "graceful");
  log("subscriptions/listen: acknowledged with an empty filter, ended gracefully");
}

async function modernOverStdio() {
  const home = path.join(WORK, "stdio-modern-home");
  fs.mkdirSync(home, { recursive: true });
  const transport = new ModernStdioTransport({
    command: BRIG, args: ["mcp", "--db", `sqlite:${path.join(home, "brig.db")}`],
    env: { ...process.env, BRIG_HOME: home }, stderr: "inherit" });
  const client = modernClient();
  await client.connect(transport);
  await modernChecks(client, "stdio 2026-07-28");
  await client.close();
}

async function overHttp() {
  const home = path.join(WORK, "http-home");
  fs.mkdirSync(home, { recursive: true });
  const token = "mcp-test-token-0123456789abcdef";
  const limited = "mcp-limited-token-0123456789abcdef";
  fs.writeFileSync(path.join(home, "tokens"), `${token}\n${limited} threads=job-* read-only\n`);
  const port = await freePort();
  const server = spawn(BRIG, ["serve", "--listen", `127.0.0.1:${port}`, "--workers", "1", "--threads", "2",
    "--db", `sqlite:${path.join(home, "brig.db")}`, "--tokens", path.join(home, "tokens")],
  { env: { ...process.env, BRIG_HOME: home }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  server.stderr.on("data", (d) => { stderr += d; });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${base}/health`)).ok) break; } catch { /* not yet */ }
      if (i > 600) throw new Error(`brig serve did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Without the token: 401, and the SDK's connect fails.
    const anon = await fetch(`${base}/mcp`, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) });
    assert.equal(anon.status, 401);
    await assert.rejects(new Client({ name: "anon", version: "1" }).connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp`))));
    const headers = { Authorization: `Bearer ${token}` };
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers } });
    const client = new Client({ name: "brig-sdk-test", version: "1.0.0" });
    await client.connect(transport);
    assert.equal(transport.sessionId, undefined, "stateless: no Mcp-Session-Id");
    await conversation(client, "http", { httpBase: base, headers });
    await client.close();
    const modern = modernClient();
    await modern.connect(new ModernHttpTransport(new URL(`${base}/mcp`), { requestInit: { headers } }));
    await modernChecks(modern, "http 2026-07-28", { httpBase: base, headers });
    await modern.close();
    // The stateless revision: a request with its version in _meta and no initialize.
    const res = await fetch(`${base}/mcp`, { method: "POST",
      headers: { ...headers, "content-type": "application/json", accept: "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list", params: { _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } }) });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.result.resultType, "complete");
    assert.equal(body.result.tools.length, TOOLS.length);
    console.log("[http] stateless 2026-07-28 tools/list without initialize");
    // A token limited to job-* and read-only: its limits reach the tools.
    const rpc = async (tok, method, params) => (await fetch(`${base}/mcp`, { method: "POST",
      headers: { Authorization: `Bearer ${tok}`, "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) })).json();
    const w = await rpc(token, "tools/call", { name: "write_file", arguments: { session_id: "job-1", path: "/a.txt", content: "x" } });
    assert.equal(w.result.isError, false, JSON.stringify(w));
    const ro = await rpc(limited, "tools/call", { name: "write_file", arguments: { session_id: "job-1", path: "/a.txt", content: "y" } });
    assert.equal(ro.result.isError, true);
    assert.match(ro.result.content[0].text, /read-only/);
    const rd = await rpc(limited, "tools/call", { name: "read_file", arguments: { session_id: "job-1", path: "/a.txt" } });
    assert.equal(rd.result.content[0].text, "x");
    const other = await rpc(limited, "tools/call", { name: "list_files", arguments: { session_id: "mcp-other" } });
    assert.equal(other.result.isError, true);
    assert.match(other.result.content[0].text, /may not use session/);
    const ls = await rpc(limited, "tools/call", { name: "list_sessions", arguments: {} });
    assert.deepEqual(ls.result.structuredContent.sessions.map((x) => x.session_id), ["job-1"]);
    const notif = await fetch(`${base}/mcp`, { method: "POST", headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
    assert.equal(notif.status, 202);
    const get = await fetch(`${base}/mcp`, { headers });
    assert.equal(get.status, 405);
    const junk = await (await fetch(`${base}/mcp`, { method: "POST", headers: { ...headers, "content-type": "application/json" },
      body: "{oops" })).json();
    assert.equal(junk.error.code, -32700);
    console.log("[http] token limits (threads, read-only), 202, 405, parse error");
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.on("exit", r));
  }
}

try {
  await overStdio();
  await modernOverStdio();
  await overHttp();
  console.log("mcp_sdk: all checks passed");
  process.exit(0);
} catch (e) {
  console.error("mcp_sdk: FAILED:", e);
  process.exit(1);
}
