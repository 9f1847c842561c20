// volt: the command-line face of the SDK. Each subcommand lives in its own cmd_*.cpp and registers itself here.
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "samples/volt/cli.h"

int main(int argc, char** argv) {
    using namespace volt::cli;
    CLI::App app{"Volt: MiniMax-VL-01 / MiniMax-Text-01 inference"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "volt 0.1.0");

    std::vector<std::pair<CLI::App*, CommandRunner>> commands;
    auto add = [&](const char* name, CommandRunner (*make)(CLI::App&)) {
        CommandRunner run = make(app);
        commands.emplace_back(app.get_subcommand(name), std::move(run));
    };
    add("info", add_info_command);
    add("tokenize", add_tokenize_command);
    add("detokenize", add_detokenize_command);
    add("logits", add_logits_command);
    add("generate", add_generate_command);
    add("embed-image", add_embed_image_command);
    add("run", add_run_command);
    add("bench", add_bench_command);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help / --version
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }
    try {
        for (auto& [sub, run] : commands)
            if (sub->parsed()) return run();
    } catch (const std::exception& e) {  // a bug: no exception is part of any contract
        std::fprintf(stderr, "volt: internal error: %s\n", e.what());
        return kExitInternal;
    }
    return kExitUsage;
}
