// Runs the `volt` binary as a user would and captures exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace volt::test {

struct CliResult {
    int exit_code = -1;
    std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// `env`: variable assignments put before the command (e.g. "VOLT_RANK=1 VOLT_WORLD_SIZE=2"). Safe to call from
// several threads at once (each run has its own stderr file).
inline CliResult run_volt(const std::string& args, const std::string& env = "") {
    static std::atomic<int> serial{0};
    const auto err_path = std::filesystem::temp_directory_path() /
                          ("volt-cli-err-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
    const std::string cmd =
        (env.empty() ? "" : env + " ") + shell_quote(VOLT_CLI_PATH) + " " + args + " 2>" + shell_quote(err_path.string());
    CliResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream e(err_path);
    std::stringstream ss;
    ss << e.rdbuf();
    r.err = ss.str();
    std::filesystem::remove(err_path);
    return r;
}

}  // namespace volt::test
