// `brig files`: a session's files without running code.
//
//   brig files ls   --session ID [PREFIX]
//   brig files cat  --session ID PATH [--offset N] [--limit N]
//   brig files put  --session ID PATH [FILE | -] [--content-type TYPE]   (stdin by default)
//   brig files edit --session ID PATH OLD NEW [--all]
//   brig files rm   --session ID PATH
//   brig files glob --session ID PATTERN
//   brig files grep --session ID [-l | -c] [-i] PATTERN [GLOB]
//   brig files link --session ID PATH [--expires SECONDS] [--base URL] [--link-key FILE]
//
// A PATH (or PREFIX, PATTERN, GLOB) that does not start with "/" is taken relative to
// /home/user, the sandbox's working directory. `put` creates the session if it does not
// exist. Every subcommand takes --db URL and --json. Exit status: 0 success (grep included
// when nothing matches); 1 the operation failed (no such session or file, expired, quota,
// store unavailable); 2 bad command line or argument (a bad path or pattern included).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "brig/file_info.h"
#include "brig/files.h"
#include "brig/grep.h"
#include "brig/session_manager.h"
#include "brig/store.h"
#include "brig/text.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "server/signed_link.h"

namespace brig::cli {
namespace {

constexpr const char* kWorkingDir = "/home/user";

struct FilesOptions {
  std::string db;
  double expires = 3600;
  std::string base = "http://127.0.0.1:8080";
  std::string link_key;
  bool json = false;
  std::string session;
  std::string path;     // PATH, PREFIX, PATTERN
  std::string source;   // put: FILE or "-"
  std::string content_type;
  int64_t offset = 0;
  int64_t limit = -1;
  std::string old_text, new_text;
  bool replace_all = false;
  std::string regex, glob;
  bool files_only = false, count = false, ignore_case = false;
};

// Relative paths name files under the sandbox's working directory.
std::string GuestPath(const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return std::string(kWorkingDir) + "/" + p;
}

nlohmann::json ToJson(const FileInfo& f) {
  return {{"path", f.path},
          {"size", f.size},
          {"content_type", f.content_type},
          {"created_at", FormatTimestamp(f.created_at)},
          {"modified_at", FormatTimestamp(f.modified_at)}};
}

// Reads all of `in`, refusing more than a stored file may hold (without reading it all).
Status ReadBounded(std::istream& in, const std::string& name, std::string* out) {
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out->append(buf, static_cast<size_t>(in.gcount()));
    if (static_cast<int64_t>(out->size()) > kMaxFileBytes) {
      return Status::ResourceExhausted(name + " is larger than a stored file may be (" +
                                       std::to_string(kMaxFileBytes) + " bytes, 20 MiB)");
    }
  }
  if (in.bad()) return Status::InvalidArgument("cannot read " + name);
  return Status::Ok();
}

void PrintFileList(const std::vector<FileInfo>& files, bool json, bool paths_only) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const FileInfo& f : files) out.push_back(ToJson(f));
    PrintJson(out);
    return;
  }
  for (const FileInfo& f : files) {
    if (paths_only) {
      std::cout << f.path << "\n";
    } else {
      char size[32];
      std::snprintf(size, sizeof size, "%10lld", static_cast<long long>(f.size));
      std::cout << size << "  " << FormatTimestamp(f.modified_at) << "  " << f.content_type << "  "
                << f.path << "\n";
    }
  }
}

int RunLs(FileService& fs, const FilesOptions& opt) {
  StatusOr<std::vector<FileInfo>> files = fs.List(opt.session, GuestPath(opt.path));
  if (!files.ok()) return ReportFailure(files.status());
  PrintFileList(files.value(), opt.json, false);
  return kExitOk;
}

int RunCat(FileService& fs, const FilesOptions& opt) {
  if (opt.limit < -1) return ReportFailure(Status::InvalidArgument("--limit must be >= 0"));
  StatusOr<FileData> data = fs.Read(opt.session, GuestPath(opt.path), opt.offset, opt.limit);
  if (!data.ok()) return ReportFailure(data.status());
  const std::string& content = data.value().content;
  if (opt.json) {
    nlohmann::json j = ToJson(data.value().info);
    j["offset"] = opt.offset;
    const bool text = IsValidUtf8(content);
    j["encoding"] = text ? "utf-8" : "base64";
    j["content"] = text ? content : Base64Encode(content);
    PrintJson(j);
  } else {
    std::fwrite(content.data(), 1, content.size(), stdout);
  }
  return kExitOk;
}

int RunPut(FileService& fs, const FilesOptions& opt) {
  std::string content;
  if (opt.source.empty() || opt.source == "-") {
    if (Status s = ReadBounded(std::cin, "stdin", &content); !s.ok()) return ReportFailure(s);
  } else {
    std::ifstream in(opt.source, std::ios::binary);
    if (!in) return ReportFailure(Status::InvalidArgument("cannot open " + opt.source));
    if (Status s = ReadBounded(in, opt.source, &content); !s.ok()) return ReportFailure(s);
  }
  StatusOr<FileInfo> info = fs.Write(opt.session, GuestPath(opt.path), std::move(content), opt.content_type);
  if (!info.ok()) return ReportFailure(info.status());
  if (opt.json) {
    PrintJson(ToJson(info.value()));
  } else {
    std::cout << info.value().path << ": " << info.value().size << (info.value().size == 1 ? " byte, " : " bytes, ")
              << info.value().content_type << "\n";
  }
  return kExitOk;
}

int RunEdit(FileService& fs, const FilesOptions& opt) {
  const std::string path = GuestPath(opt.path);
  StatusOr<int64_t> n = fs.Edit(opt.session, path, opt.old_text, opt.new_text, opt.replace_all);
  if (!n.ok()) return ReportFailure(n.status());
  if (opt.json) {
    PrintJson({{"path", path}, {"replacements", n.value()}});
  } else {
    std::cout << path << ": " << n.value() << (n.value() == 1 ? " replacement\n" : " replacements\n");
  }
  return kExitOk;
}

int RunRm(FileService& fs, const FilesOptions& opt) {
  const std::string path = GuestPath(opt.path);
  if (Status s = fs.Delete(opt.session, path); !s.ok()) return ReportFailure(s);
  if (opt.json) PrintJson({{"path", path}, {"deleted", true}});
  return kExitOk;
}

int RunGlob(FileService& fs, const FilesOptions& opt) {
  StatusOr<std::vector<FileInfo>> files = fs.Glob(opt.session, GuestPath(opt.path));
  if (!files.ok()) return ReportFailure(files.status());
  PrintFileList(files.value(), opt.json, true);
  return kExitOk;
}

int RunGrep(FileService& fs, const FilesOptions& opt) {
  GrepOptions g;
  g.mode = opt.files_only ? GrepMode::kFilesWithMatches
           : opt.count    ? GrepMode::kCount
                          : GrepMode::kContent;
  g.case_insensitive = opt.ignore_case;
  g.path_glob = GuestPath(opt.glob);
  StatusOr<GrepResult> r = fs.Grep(opt.session, opt.regex, g);
  if (!r.ok()) return ReportFailure(r.status());
  const GrepResult& result = r.value();
  if (opt.json) {
    nlohmann::json files = nlohmann::json::array();
    for (const GrepFileResult& f : result.files) {
      nlohmann::json jf = {{"path", f.path}, {"count", f.count}, {"binary", f.binary}};
      if (g.mode == GrepMode::kContent) {
        nlohmann::json lines = nlohmann::json::array();
        for (const GrepLine& l : f.lines) {
          lines.push_back({{"line", l.number}, {"text", l.text}, {"text_truncated", l.text_truncated}});
        }
        jf["lines"] = std::move(lines);
      }
      files.push_back(std::move(jf));
    }
    PrintJson({{"files", files},
               {"files_searched", result.files_searched},
               {"truncated", result.truncated},
               {"truncated_reason", result.truncated ? nlohmann::json(result.truncated_reason) : nlohmann::json()}});
  } else {
    for (const GrepFileResult& f : result.files) {
      switch (g.mode) {
        case GrepMode::kFilesWithMatches: std::cout << f.path << "\n"; break;
        case GrepMode::kCount: std::cout << f.path << ":" << f.count << "\n"; break;
        case GrepMode::kContent:
          if (f.binary) {
            std::cout << f.path << ": binary file matches\n";
            break;
          }
          for (const GrepLine& l : f.lines) {
            std::cout << f.path << ":" << l.number << ":" << l.text << (l.text_truncated ? " [...]" : "") << "\n";
          }
          break;
      }
    }
  }
  std::cout.flush();
  if (result.truncated) std::cerr << "brig: grep stopped early: " << result.truncated_reason << "\n";
  return kExitOk;
}

// A signed link (server/signed_link.h) to one file, for a browser, valid `expires` seconds.
int RunLink(FileService& fs, const FilesOptions& opt) {
  const std::string path = GuestPath(opt.path);
  // The file must exist now (a link to nothing is a mistake worth reporting here).
  StatusOr<FileData> file = fs.Read(opt.session, path, 0, 0);
  if (!file.ok()) return ReportFailure(file.status());
  auto home = BrigHomeDir();
  if (!home.ok()) return ReportFailure(home.status());
  auto key = server::LoadLinkKey(opt.link_key, home.value() + "/link.key");
  if (!key.ok()) return ReportFailure(key.status());
  int64_t expires = NowMicros() / 1'000'000 + static_cast<int64_t>(opt.expires);
  std::string base = opt.base;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string url = base + server::MakeFileLink(key.value(), opt.session, path, expires);
  if (opt.json) {
    PrintJson({{"url", url}, {"path", path}, {"expires_at", FormatTimestamp(expires * 1'000'000)}});
  } else {
    std::cout << url << "\n";
  }
  return kExitOk;
}

}  // namespace

Runner AddFilesCommand(CLI::App& app) {
  auto opt = std::make_shared<FilesOptions>();
  CLI::App* cmd = app.add_subcommand("files", "Read, write, edit and search a session's files");
  cmd->require_subcommand(1);
  auto leaf = [&](const char* name, const char* help) {
    CLI::App* sub = cmd->add_subcommand(name, help);
    sub->add_option("-s,--session", opt->session, "Session id")->required();
    AddStoreOption(sub, &opt->db);
    sub->add_flag("--json", opt->json, "Print JSON");
    return sub;
  };
  const char* path_help = "File path (relative: under /home/user)";

  CLI::App* ls = leaf("ls", "List files, optionally those whose path starts with PREFIX");
  ls->add_option("prefix", opt->path, "Path prefix, e.g. /tmp/");
  CLI::App* cat = leaf("cat", "Print a file (or --limit bytes from --offset)");
  cat->add_option("path", opt->path, path_help)->required();
  cat->add_option("--offset", opt->offset, "First byte to print (default 0)")->check(CLI::NonNegativeNumber);
  cat->add_option("--limit", opt->limit, "Bytes to print at most (default: to the end)")
      ->check(CLI::NonNegativeNumber);
  CLI::App* put = leaf("put", "Create or replace a file with the content of FILE or stdin");
  put->add_option("path", opt->path, path_help)->required();
  put->add_option("source", opt->source, "Local file to upload, or - for stdin (the default)");
  put->add_option("--content-type", opt->content_type, "MIME type (default: from the name and the content)");
  CLI::App* edit = leaf("edit", "Replace OLD with NEW in a file (OLD must occur once, unless --all)");
  edit->add_option("path", opt->path, path_help)->required();
  edit->add_option("old", opt->old_text, "Text to replace")->required();
  edit->add_option("new", opt->new_text, "Replacement (may be empty)")->required();
  edit->add_flag("-a,--all", opt->replace_all, "Replace every occurrence");
  CLI::App* rm = leaf("rm", "Delete a file");
  rm->add_option("path", opt->path, path_help)->required();
  CLI::App* glob = leaf("glob", "List files matching a shell pattern (*, ?, [...], ** across directories)");
  glob->add_option("pattern", opt->path, "Pattern, e.g. '/home/user/**/*.py'")->required();
  CLI::App* grep = leaf("grep", "Search file contents with a regular expression");
  grep->add_option("pattern", opt->regex, "Regular expression (RE2: Python re syntax, no back-references or lookaround)")
      ->required();
  grep->add_option("glob", opt->glob, "Only files matching this shell pattern");
  auto* l = grep->add_flag("-l,--files-with-matches", opt->files_only, "Print only the names of matching files");
  auto* c = grep->add_flag("-c,--count", opt->count, "Print the number of matching lines per file");
  l->excludes(c);
  grep->add_flag("-i,--ignore-case", opt->ignore_case, "Match letters of either case");
  CLI::App* link = leaf("link", "Print a signed link to a file that a browser can open without a token");
  link->add_option("path", opt->path, path_help)->required();
  link->add_option("--expires", opt->expires, "Seconds the link stays valid (default 3600)")->check(CLI::Range(1.0, 3.2e9));
  link->add_option("--base", opt->base, "The server's URL (default http://127.0.0.1:8080)");
  link->add_option("--link-key", opt->link_key, "File holding the link key (default $BRIG_LINK_KEY, else $BRIG_HOME/link.key)");

  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    StatusOr<std::unique_ptr<Store>> store = OpenConfiguredStore(opt->db);
    if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
    SessionManager sessions(*store.value());
    FileService fs(sessions);
    if (ls->parsed()) return RunLs(fs, *opt);
    if (cat->parsed()) return RunCat(fs, *opt);
    if (put->parsed()) return RunPut(fs, *opt);
    if (edit->parsed()) return RunEdit(fs, *opt);
    if (rm->parsed()) return RunRm(fs, *opt);
    if (glob->parsed()) return RunGlob(fs, *opt);
    if (grep->parsed()) return RunGrep(fs, *opt);
    if (link->parsed()) return RunLink(fs, *opt);
    return kExitUsage;
  };
}

}  // namespace brig::cli
