// Fork, export and import of sessions with a real interpreter (brig::Sessions and
// SessionManager::Fork): what is carried over, that the copies diverge, concurrency with
// executions, round trips on SQLite and PostgreSQL, snapshots from another guest build, and
// refused imports that leave no session behind. (The byte format alone, as untrusted input:
// tests/session/snapshot_format_test.cc; the CLI: tests/e2e/test_sessions_files.py.)
#include <stdlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../store/pg_harness.h"
#include "brig/sandbox.h"
#include "brig/sessions.h"
#include "session/snapshot_format.h"
#include "session/state_format.h"
#include "store/store.h"
#include "util/little_endian.h"

namespace brig {
namespace {

enum class Backend { kSqlite, kPostgres };

class SnapshotTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/brig-snapshot-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    url_ = NewUrl();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A new, empty store of the test's backend.
  std::string NewUrl() {
    if (GetParam() == Backend::kPostgres) {
      if (store::testing::SkipPostgres()) {
        skip_ = true;
        return "";
      }
      StatusOr<std::string> url = store::testing::PgServer::Get().NewUrl();
      EXPECT_TRUE(url.ok()) << url.status().ToString();
      return url.ok() ? url.value() : "";
    }
    return "sqlite:" + dir_ + "/brig" + std::to_string(++stores_) + ".db";
  }

  std::unique_ptr<Sessions> Open(const std::string& url, Sessions::Options o = {}) {
    o.store_url = url;
    auto s = Sessions::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  // Exports `id` from `from` and imports it as "copy" into a new store (its URL in *url), which
  // *into holds; *imported says how. Call with ASSERT_NO_FATAL_FAILURE.
  void ImportCopy(Sessions& from, std::string_view id, std::string* url, std::unique_ptr<Sessions>* into,
                  ImportResult* imported) {
    StatusOr<std::string> bytes = from.ExportSnapshot(id);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    *url = NewUrl();
    *into = Open(*url);
    StatusOr<ImportResult> r = (*into)->ImportSnapshot("copy", bytes.value());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    *imported = std::move(r.value());
  }

  static SessionResult Run(Sessions& s, std::string_view id, std::string_view code) {
    auto r = s.Execute(id, code);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_TRUE(r.value().execution.ok) << code << ": " << r.value().execution.stderr_text;
    return r.value();
  }
  static std::string Eval(Sessions& s, std::string_view id, std::string_view code) {
    return Run(s, id, code).execution.result.value_or("<none>");
  }

  std::string dir_, url_;
  int stores_ = 0;
  bool skip_ = false;
};

INSTANTIATE_TEST_SUITE_P(Backends, SnapshotTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) { return info.param == Backend::kSqlite ? "SQLite" : "PostgreSQL"; });

#define SKIP_IF_NO_BACKEND() \
  if (skip_) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1"

constexpr std::string_view kSetUp = R"(import os, random, json
x = 41
class Point:
    def __init__(self, a, b): self.a, self.b = a, b
    def total(self): return self.a + self.b
p = Point(2, 3)
def f(): return x + 1
g = (i * i for i in range(5))
next(g)
os.makedirs('/home/user/empty/dir')
open('/home/user/notes.txt', 'w').write('hello')
open('/tmp/data.bin', 'wb').write(bytes(range(256)))
)";

TEST_P(SnapshotTest, ForkCarriesStateAndFilesThenTheTwoDiverge) {
  SKIP_IF_NO_BACKEND();
  auto s = Open(url_);
  Run(*s, "src", kSetUp);
  ASSERT_TRUE(s->files().Write("src", "/data/outside.csv", "a,b\n").ok());
  StatusOr<SessionInfo> fork = s->manager().Fork("src", "dst");
  ASSERT_TRUE(fork.ok()) << fork.status().ToString();
  EXPECT_EQ(fork.value().file_count, 3);
  // Everything is there, generators and classes included (a page snapshot: exact).
  SessionResult r = Run(*s, "dst",
                        "(x, f(), p.total(), next(g), open('/home/user/notes.txt').read(),"
                        " len(open('/tmp/data.bin','rb').read()), os.listdir('/home/user/empty'))");
  EXPECT_EQ(r.execution.result, "(41, 42, 5, 1, 'hello', 256, ['dir'])");
  EXPECT_EQ(r.restored_from, "pages");
  EXPECT_EQ(s->files().Read("dst", "/data/outside.csv").value().content, "a,b\n");
  // They diverge: variables and files changed in one are not seen in the other.
  Run(*s, "dst", "x = 100\nopen('/home/user/notes.txt', 'w').write('fork')\nos.remove('/tmp/data.bin')");
  Run(*s, "src", "x += 1\nopen('/tmp/src-only', 'w').write('s')");
  EXPECT_EQ(Eval(*s, "src", "(x, next(g), open('/home/user/notes.txt').read(), os.path.exists('/tmp/data.bin'))"),
            "(42, 1, 'hello', True)");
  EXPECT_EQ(Eval(*s, "dst", "(x, next(g), open('/home/user/notes.txt').read(), os.path.exists('/tmp/data.bin'),"
                            " os.path.exists('/tmp/src-only'))"),
            "(100, 4, 'fork', False, False)");
  // Another process sees the fork as this one left it.
  auto other = Open(url_);
  EXPECT_EQ(Eval(*other, "dst", "(x, f())"), "(100, 101)");
}

TEST_P(SnapshotTest, AForkDrawsItsOwnRandomNumbers) {
  SKIP_IF_NO_BACKEND();
  auto s = Open(url_);
  Run(*s, "src", "import random\nrandom.seed(7)\nfirst = random.random()");
  ASSERT_TRUE(s->manager().Fork("src", "dst").ok());
  const std::string in_src = Eval(*s, "src", "random.random()");
  const std::string in_dst = Eval(*s, "dst", "random.random()");
  EXPECT_NE(in_src, in_dst);
  // The source's stream is its own, untouched: what seed(7) gives second.
  auto plain = Open(url_);
  EXPECT_EQ(Eval(*plain, "check", "import random\nrandom.seed(7)\nrandom.random()\nrandom.random()"), in_src);
}

// Executions of the source keep its variable and its file in step; forks taken while they run
// must each hold one moment: the same number in both, never a state from one execution and
// files from another.
TEST_P(SnapshotTest, ForksTakenDuringExecutionsAreEachOneMoment) {
  SKIP_IF_NO_BACKEND();
  auto s = Open(url_);
  Run(*s, "src", "n = 0\nopen('/home/user/n.txt', 'w').write('0')");
  std::atomic<int> executed{0};
  std::atomic<bool> done{false};
  std::thread runner([&] {
    auto mine = Open(url_);  // another "process"
    for (int i = 0; i < 25; ++i) {
      auto r = mine->Execute("src", "n += 1\nopen('/home/user/n.txt', 'w').write(str(n))");
      EXPECT_TRUE(r.ok() && r.value().saved) << r.status().ToString();
      ++executed;
    }
    done = true;
  });
  std::vector<std::string> forks;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pause(0, 3000);
  for (int i = 0; !done || i < 3; ++i) {
    const std::string id = "fork-" + std::to_string(i);
    StatusOr<SessionInfo> f = s->manager().Fork("src", id);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    forks.push_back(id);
    // A pause of random length: forks land at every phase of the runner's executions (and
    // the runner gets the lock: SQLite's is a polled file lock, not a fair queue).
    std::this_thread::sleep_for(std::chrono::microseconds(pause(rng)));
  }
  runner.join();
  std::set<std::string> seen;
  for (const std::string& id : forks) {
    std::string both = Eval(*s, id, "(n, int(open('/home/user/n.txt').read()))");
    const std::string n = both.substr(1, both.find(',') - 1);
    EXPECT_EQ(both, "(" + n + ", " + n + ")") << id;
    seen.insert(n);
  }
  EXPECT_EQ(Eval(*s, "src", "n"), "25");
  EXPECT_GE(forks.size(), 3u);
}

TEST_P(SnapshotTest, ExportThenImportElsewhereRestoresEverything) {
  SKIP_IF_NO_BACKEND();
  auto a = Open(url_);
  Run(*a, "src", kSetUp);
  ASSERT_TRUE(a->files().Write("src", "/data/outside.csv", "a,b\n").ok());
  ASSERT_TRUE(a->manager().Create("meta", 10, {{"owner", "me"}}).ok());
  Run(*a, "meta", "y = 'meta'");
  StatusOr<std::string> bytes = a->ExportSnapshot("src");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  StatusOr<std::string> meta_bytes = a->ExportSnapshot("meta");
  ASSERT_TRUE(meta_bytes.ok());

  // Another store (another machine's), same guest build and image cache.
  const std::string url_b = NewUrl();
  auto b = Open(url_b);
  StatusOr<ImportResult> imported = b->ImportSnapshot("copy", bytes.value());
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported.value().restored_from, "pages");
  EXPECT_EQ(imported.value().pages_dropped, "");
  EXPECT_TRUE(imported.value().not_restored.empty());
  EXPECT_EQ(imported.value().source_thread_id, "src");
  EXPECT_EQ(imported.value().source_guest_build_id, Sandbox::GuestBuildId());
  EXPECT_EQ(imported.value().session.thread_id, "copy");
  EXPECT_EQ(imported.value().session.file_count, 3);
  SessionResult r = Run(*b, "copy",
                        "(x, f(), p.total(), next(g), open('/home/user/notes.txt').read(),"
                        " open('/tmp/data.bin','rb').read() == bytes(range(256)), os.listdir('/home/user/empty'))");
  EXPECT_EQ(r.execution.result, "(41, 42, 5, 1, 'hello', True, ['dir'])");
  EXPECT_EQ(r.restored_from, "pages");
  EXPECT_EQ(b->files().Read("copy", "/data/outside.csv").value().content, "a,b\n");
  EXPECT_TRUE(b->files().Read("copy", "/home/user/empty/dir").status().IsFailedPrecondition());  // a directory
  // Metadata comes along; the expiry is the importing side's (default 180 days) unless given.
  StatusOr<ImportResult> m = b->ImportSnapshot("meta-copy", meta_bytes.value());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m.value().session.metadata, nlohmann::json({{"owner", "me"}}));
  EXPECT_NEAR(static_cast<double>(m.value().session.expires_at - m.value().session.created_at),
              180.0 * kMicrosPerDay, 1e6);
  Sessions::ImportOptions o;
  o.expiry_days = 2;
  o.metadata = nlohmann::json{{"moved", true}};
  StatusOr<ImportResult> m2 = b->ImportSnapshot("meta-2", meta_bytes.value(), o);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2.value().session.metadata, nlohmann::json({{"moved", true}}));
  EXPECT_NEAR(static_cast<double>(m2.value().session.expires_at - m2.value().session.created_at),
              2.0 * kMicrosPerDay, 1e6);
  EXPECT_EQ(Eval(*b, "meta-2", "y"), "'meta'");
  // The source is untouched by its export.
  EXPECT_EQ(Eval(*a, "src", "(x, next(g))"), "(41, 1)");
  // A session that never ran: no interpreter state travels.
  ASSERT_TRUE(a->manager().Create("blank").ok());
  ASSERT_TRUE(a->files().Write("blank", "/home/user/in.txt", "input").ok());
  StatusOr<ImportResult> blank = b->ImportSnapshot("blank", a->ExportSnapshot("blank").value());
  ASSERT_TRUE(blank.ok()) << blank.status().ToString();
  EXPECT_EQ(blank.value().restored_from, "new");
  EXPECT_EQ(Eval(*b, "blank", "open('/home/user/in.txt').read()"), "'input'");
}

TEST_P(SnapshotTest, PipesAreNotSavedWithTheSession) {
  SKIP_IF_NO_BACKEND();
  auto a = Open(url_);
  Run(*a, "p", "import os\nr, w = os.pipe()\nos.write(w, b'x')\nf = open('/tmp/kept.txt', 'w+')\nf.write('k')");
  std::string url_b;
  std::unique_ptr<Sessions> b;
  ImportResult imported;
  ASSERT_NO_FATAL_FAILURE(ImportCopy(*a, "p", &url_b, &b, &imported));
  // Restored elsewhere: the file is open again, the pipe's ends are not.
  EXPECT_EQ(Eval(*b, "copy",
                 "import errno\ntry:\n    os.read(r, 1)\nexcept OSError as e:\n    gone = errno.errorcode[e.errno]\n"
                 "gone, f.tell()"),
            "('EBADF', 1)");
  EXPECT_EQ(Eval(*a, "p", "os.read(r, 10)"), "b'x'");  // the live session keeps its pipe
}

// What the file rows cannot hold (modes, extended attributes, named pipes) is in the stored
// state: after a restart, in a fork, and in an export imported elsewhere.
constexpr std::string_view kNodeExtras = R"(import os
open('/home/user/secret', 'w').write('s')
os.chmod('/home/user/secret', 0o600)
os.setxattr('/home/user/secret', 'user.tag', b'v\x00\xff')
os.makedirs('/tmp/locked/inner')
os.mkfifo('/tmp/locked/inner/pipe', 0o640)
os.chmod('/tmp/locked', 0o500)
os.mkdir('/home/user/empty', 0o700)
)";
constexpr std::string_view kNodeExtrasCheck = R"(import os, stat
(oct(os.stat('/home/user/secret').st_mode), os.getxattr('/home/user/secret', 'user.tag'),
 stat.S_ISFIFO(os.stat('/tmp/locked/inner/pipe').st_mode), oct(stat.S_IMODE(os.stat('/tmp/locked/inner/pipe').st_mode)),
 oct(os.stat('/tmp/locked').st_mode),
 oct(os.stat('/home/user/empty').st_mode), open('/home/user/secret').read()))";
constexpr std::string_view kNodeExtrasWant =
    "('0o100600', b'v\\x00\\xff', True, '0o640', '0o40500', '0o40700', 's')";

TEST_P(SnapshotTest, ModesAttributesAndNamedPipesAreSavedWithTheSession) {
  SKIP_IF_NO_BACKEND();
  {
    auto a = Open(url_);
    Run(*a, "x", kNodeExtras);
  }
  auto b = Open(url_);  // a restart: loaded from the store
  SessionResult r = Run(*b, "x", kNodeExtrasCheck);
  EXPECT_EQ(r.restored_from, "pages");
  EXPECT_TRUE(r.not_restored.empty());
  EXPECT_EQ(r.execution.result, kNodeExtrasWant);
  ASSERT_TRUE(b->manager().Fork("x", "fork").ok());
  EXPECT_EQ(Eval(*b, "fork", kNodeExtrasCheck), kNodeExtrasWant);
  std::string url_c;
  std::unique_ptr<Sessions> c;
  ImportResult imported;
  ASSERT_NO_FATAL_FAILURE(ImportCopy(*b, "x", &url_c, &c, &imported));
  EXPECT_TRUE(imported.not_restored.empty());
  EXPECT_EQ(Eval(*c, "copy", kNodeExtrasCheck), kNodeExtrasWant);
  // Changes are saved too: an attribute removed, a mode back to the default, the pipe gone.
  Run(*c, "copy", "os.removexattr('/home/user/secret', 'user.tag')\nos.chmod('/home/user/secret', 0o644)\n"
                  "os.chmod('/tmp/locked', 0o755)\nos.remove('/tmp/locked/inner/pipe')");
  c.reset();
  auto c2 = Open(url_c);
  EXPECT_EQ(Eval(*c2, "copy",
                 "(os.listxattr('/home/user/secret'), oct(os.stat('/home/user/secret').st_mode),"
                 " oct(os.stat('/tmp/locked').st_mode), os.listdir('/tmp/locked/inner'))"),
            "([], '0o100644', '0o40755', [])");
}

// A reset clears the interpreter, not the files: their modes, attributes and named pipes stay,
// across a restart, a fork and an export/import of the reset session.
TEST_P(SnapshotTest, AResetKeepsModesAttributesAndNamedPipes) {
  SKIP_IF_NO_BACKEND();
  {
    auto a = Open(url_);
    Run(*a, "x", std::string(kNodeExtras) + "\nkept = 1");
    ASSERT_TRUE(a->Reset("x").ok());
  }
  auto b = Open(url_);  // loaded from the store, before any execution since the reset
  SessionResult r = Run(*b, "x", std::string("gone = 'kept' not in globals()\n") + std::string(kNodeExtrasCheck));
  EXPECT_EQ(r.restored_from, "new");
  EXPECT_TRUE(r.not_restored.empty());
  EXPECT_EQ(r.execution.result, kNodeExtrasWant);
  EXPECT_EQ(Eval(*b, "x", "gone"), "True");
  // Reset again, then fork and export without running in between.
  ASSERT_TRUE(b->Reset("x").ok());
  ASSERT_TRUE(b->manager().Fork("x", "fork").ok());
  EXPECT_EQ(Eval(*b, "fork", kNodeExtrasCheck), kNodeExtrasWant);
  ASSERT_TRUE(b->Reset("x").ok());
  std::string url_c;
  std::unique_ptr<Sessions> c;
  ImportResult imported;
  ASSERT_NO_FATAL_FAILURE(ImportCopy(*b, "x", &url_c, &c, &imported));
  EXPECT_EQ(imported.restored_from, "new");
  EXPECT_TRUE(imported.not_restored.empty());
  EXPECT_EQ(Eval(*c, "copy", "'kept' in globals()"), "False");
  EXPECT_EQ(Eval(*c, "copy", kNodeExtrasCheck), kNodeExtrasWant);
}

TEST_P(SnapshotTest, ExportAndImportRefusals) {
  SKIP_IF_NO_BACKEND();
  auto s = Open(url_);
  EXPECT_TRUE(s->ExportSnapshot("missing").status().IsNotFound());
  EXPECT_TRUE(s->ExportSnapshot("").status().IsInvalidArgument());
  Run(*s, "src", "x = 1\nopen('/tmp/a', 'w').write('a' * 100)\nopen('/tmp/b', 'w').write('b')");
  const std::string bytes = s->ExportSnapshot("src").value();

  // An existing session: AlreadyExists, and it is unchanged.
  Run(*s, "taken", "x = 'mine'");
  StatusOr<ImportResult> taken = s->ImportSnapshot("taken", bytes);
  EXPECT_TRUE(taken.status().IsAlreadyExists()) << taken.status().ToString();
  EXPECT_EQ(Eval(*s, "taken", "x"), "'mine'");
  // Damaged or truncated bytes, bad ids or options: InvalidArgument, no session.
  const std::vector<std::string> bad = {"", "not a snapshot", bytes.substr(0, bytes.size() / 2),
                                        bytes.substr(0, bytes.size() - 1)};
  for (const std::string& b : bad) {
    Status st = s->ImportSnapshot("new", b).status();
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  }
  EXPECT_TRUE(s->ImportSnapshot("bad\nid", bytes).status().IsInvalidArgument());
  Sessions::ImportOptions days;
  days.expiry_days = 0;
  EXPECT_TRUE(s->ImportSnapshot("new", bytes, days).status().IsInvalidArgument());
  Sessions::ImportOptions meta;
  meta.metadata = nlohmann::json(3);
  EXPECT_TRUE(s->ImportSnapshot("new", bytes, meta).status().IsInvalidArgument());
  // Over the importing side's quotas: ResourceExhausted.
  Sessions::Options small;
  small.max_files_per_session = 1;
  auto strict = Open(url_, small);
  Status files = strict->ImportSnapshot("new", bytes).status();
  EXPECT_TRUE(files.IsResourceExhausted()) << files.ToString();
  small = {};
  small.max_bytes_per_session = 50;
  auto tight = Open(url_, small);
  EXPECT_TRUE(tight->ImportSnapshot("new", bytes).status().IsResourceExhausted());
  EXPECT_FALSE(s->manager().Exists("new").value());

  // An expired session cannot be exported until extended.
  {
    auto raw = store::OpenStore(url_);
    ASSERT_TRUE(raw.ok()) << raw.status().ToString();
    ASSERT_TRUE(raw.value()->CreateSession("old", NowMicros() - 1000, nullptr).ok());
  }
  Status expired = s->ExportSnapshot("old").status();
  EXPECT_TRUE(expired.IsFailedPrecondition()) << expired.ToString();
  ASSERT_TRUE(s->manager().Extend("old", 1).ok());
  EXPECT_TRUE(s->ExportSnapshot("old").ok());
}

// A live session's portable snapshot is taken after the answer (Options::
// portable_in_background). A fork or an export that comes before it must not copy an older
// one (or none): the pending one is stored first.
TEST_P(SnapshotTest, ForkAndExportRightAfterAnExecutionCarryItsPortableSnapshot) {
  SKIP_IF_NO_BACKEND();
  Sessions::Options o;
  o.portable_delay = std::chrono::hours(1);  // the background thread would not take it in time
  o.portable_max_lag = std::chrono::hours(1);
  auto s = Open(url_, o);
  Run(*s, "src", "x = 1");
  Run(*s, "src", "x = 2");
  ASSERT_TRUE(s->manager().Fork("src", "dst").ok());
  auto store = store::OpenStore(url_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  StatusOr<std::optional<store::SessionState>> src = store.value()->GetState("src");
  ASSERT_TRUE(src.ok() && src.value());
  EXPECT_EQ(src.value()->fallback_version, 2) << "the fork stored the pending portable snapshot first";
  StatusOr<std::optional<store::SessionState>> dst = store.value()->GetState("dst");
  ASSERT_TRUE(dst.ok() && dst.value());
  EXPECT_EQ(dst.value()->version, 1);
  EXPECT_EQ(dst.value()->fallback_version, 1) << "the fork carries the fallback of the version it copied";
  EXPECT_FALSE(dst.value()->fallback.empty());

  Run(*s, "src", "x = 3");
  StatusOr<session::SessionSnapshot> decoded = session::DecodeSnapshot(s->ExportSnapshot("src").value(), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_FALSE(decoded.value().portable.empty());
  // Restored by its portable part alone (as another build would): the latest namespace.
  session::SessionSnapshot portable_only = decoded.value();
  portable_only.pages.clear();
  portable_only.guest_build_id.clear();
  portable_only.image_digest.clear();
  StatusOr<ImportResult> r = s->ImportSnapshot("moved", session::EncodeSnapshot(portable_only));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Eval(*s, "moved", "x"), "3");
}

// On PostgreSQL the portable snapshot is taken after the answer only because every node's
// image has the database's seed. A process whose image was made before with another seed
// (here: a sandbox created first) saves it with the state instead. (Run alone, as ctest
// does: an earlier test in the same process would have fixed the image already.)
TEST_P(SnapshotTest, AnImageWithAnotherSeedThanTheDatabasesSavesThePortableSnapshotWithTheState) {
  SKIP_IF_NO_BACKEND();
  if (GetParam() != Backend::kPostgres) GTEST_SKIP() << "only PostgreSQL shares the image seed";
  ASSERT_TRUE(Sandbox::Create().ok());  // the process image, with a seed of its own
  Sessions::Options o;
  o.portable_delay = std::chrono::hours(1);
  o.portable_max_lag = std::chrono::hours(1);
  auto s = Open(url_, o);
  Run(*s, "t", "x = 1");
  auto store = store::OpenStore(url_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  StatusOr<std::optional<store::SessionState>> st = store.value()->GetState("t");
  ASSERT_TRUE(st.ok() && st.value());
  EXPECT_EQ(st.value()->fallback_version, 0) << "no fallback: the portable snapshot is in the state";
  std::optional<session::StoredState> state = session::DecodeState(st.value()->snapshot);
  ASSERT_TRUE(state.has_value());
  EXPECT_FALSE(state->portable.empty());
}

// A snapshot whose page snapshot another guest build (or another image) made: the import
// keeps its portable part, reports what will not come back, and the session restores from it.
// Without a portable part the import is refused, naming both builds.
TEST_P(SnapshotTest, SnapshotFromAnotherBuildFallsBackToItsPortablePartOrIsRefused) {
  SKIP_IF_NO_BACKEND();
  auto s = Open(url_);
  Run(*s, "src", kSetUp);
  StatusOr<session::SessionSnapshot> decoded = session::DecodeSnapshot(s->ExportSnapshot("src").value(), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_FALSE(decoded.value().pages.empty());
  ASSERT_FALSE(decoded.value().portable.empty());
  EXPECT_EQ(decoded.value().not_portable.count("g"), 1u);  // a generator: pages only

  // The page snapshot's own header rewritten, as another build would have written it.
  auto rebuild = [](const session::SessionSnapshot& in, const std::string& build, const std::string& digest) {
    session::SessionSnapshot out = in;
    LeReader r(in.pages);
    std::string_view magic, header;
    uint32_t len = 0;
    EXPECT_TRUE(r.Bytes(8, &magic) && r.U32(&len) && r.Bytes(len, &header));
    nlohmann::json h = nlohmann::json::parse(header);
    h["guest_build_id"] = build;
    h["image_digest"] = digest;
    const std::string text = h.dump();
    out.pages = std::string(magic);
    AppendLe32(&out.pages, static_cast<uint32_t>(text.size()));
    out.pages += text;
    out.pages += r.rest();
    out.guest_build_id = build;
    out.image_digest = digest;
    return out;
  };
  const session::SessionSnapshot foreign =
      rebuild(decoded.value(), "cpython-3.11.2-other-build", decoded.value().image_digest);
  StatusOr<ImportResult> r = s->ImportSnapshot("moved", session::EncodeSnapshot(foreign));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().restored_from, "portable");
  EXPECT_NE(r.value().pages_dropped.find("cpython-3.11.2-other-build"), std::string::npos) << r.value().pages_dropped;
  ASSERT_EQ(r.value().not_restored.count("g"), 1u);
  EXPECT_NE(r.value().not_restored.at("g").find("not saved portably"), std::string::npos);
  EXPECT_EQ(r.value().source_guest_build_id, "cpython-3.11.2-other-build");
  SessionResult first = Run(*s, "moved", "(x, f(), p.total(), open('/home/user/notes.txt').read(), 'g' in globals())");
  EXPECT_EQ(first.restored_from, "portable");
  EXPECT_EQ(first.execution.result, "(41, 42, 5, 'hello', False)");
  EXPECT_EQ(first.not_restored.count("g"), 1u);  // reported again by the session, as Sessions does

  // Another image of the same build: the same fallback.
  const session::SessionSnapshot other_image =
      rebuild(decoded.value(), decoded.value().guest_build_id, "0123456789abcdef");
  StatusOr<ImportResult> r2 = s->ImportSnapshot("moved-2", session::EncodeSnapshot(other_image));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2.value().restored_from, "portable");
  EXPECT_NE(r2.value().pages_dropped.find("another image"), std::string::npos) << r2.value().pages_dropped;

  // No portable part: refused with both builds named, and no session.
  session::SessionSnapshot pages_only = foreign;
  pages_only.portable.clear();
  pages_only.not_portable.clear();
  Status refused = s->ImportSnapshot("moved-3", session::EncodeSnapshot(pages_only)).status();
  ASSERT_TRUE(refused.IsFailedPrecondition()) << refused.ToString();
  EXPECT_NE(refused.message().find("cpython-3.11.2-other-build"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find(std::string(Sandbox::GuestBuildId())), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("no portable part"), std::string::npos) << refused.message();
  EXPECT_FALSE(s->manager().Exists("moved-3").value());

  // A header that disagrees with its own page snapshot, or a portable part that does not
  // load: damaged, no session.
  session::SessionSnapshot liar = decoded.value();
  liar.guest_build_id = "cpython-3.11.2-other-build";
  EXPECT_TRUE(s->ImportSnapshot("moved-4", session::EncodeSnapshot(liar)).status().IsInvalidArgument());
  session::SessionSnapshot garbage = foreign;
  garbage.portable = "not a pickle at all";
  Status broken = s->ImportSnapshot("moved-5", session::EncodeSnapshot(garbage)).status();
  EXPECT_TRUE(broken.IsInvalidArgument()) << broken.ToString();
  EXPECT_FALSE(s->manager().Exists("moved-4").value());
  EXPECT_FALSE(s->manager().Exists("moved-5").value());
}

// A process that holds a session live must not reuse it for a new session of the same name
// that reached the same state version (deleted, then imported: version 1 again).
TEST_P(SnapshotTest, ALiveInterpreterIsNotReusedForASessionMadeAgain) {
  SKIP_IF_NO_BACKEND();
  auto s = Open(url_);
  Run(*s, "other", "x = 999");
  const std::string other = s->ExportSnapshot("other").value();
  Run(*s, "t", "x = 1");  // version 1, held live
  EXPECT_EQ(Run(*s, "t", "x").restored_from, "live");  // version 2
  auto admin = Open(url_);
  ASSERT_TRUE(admin->manager().Delete("t").ok());
  Run(*admin, "t", "x = 5");  // made again by an execution: version 1
  ASSERT_TRUE(admin->manager().Delete("t").ok());
  ASSERT_TRUE(admin->ImportSnapshot("t", other).ok());  // made again: version 1
  Run(*admin, "t", "x += 1");                           // version 2, as the live one holds
  SessionResult r = Run(*s, "t", "x");
  EXPECT_NE(r.restored_from, "live");
  EXPECT_EQ(r.execution.result, "1000");
}

}  // namespace
}  // namespace brig
