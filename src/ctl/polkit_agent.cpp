#include "polkit_agent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

extern char** environ;

namespace lvkeeper::ctl
{

namespace
{

constexpr int registerTimeoutMs = 5000;

} // namespace

void PolkitAgent::startIfUseful()
{
    if (pid_ > 0 || ::geteuid() == 0 || !::isatty(STDIN_FILENO) || !::isatty(STDOUT_FILENO))
    {
        return;
    }
    // pkttyagent closes --notify-fd once it is registered for this process's session.
    int notify[2] = {-1, -1};
    if (::pipe2(notify, O_CLOEXEC) < 0)
    {
        return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // The write end goes to the agent without O_CLOEXEC, as fd 3.
    posix_spawn_file_actions_adddup2(&actions, notify[1], 3);
    const std::string parent = std::to_string(::getpid());
    std::vector<std::string> args = {"pkttyagent", "--notify-fd", "3", "--fallback", "--process", parent};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args)
    {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, "pkttyagent", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(notify[1]);
    if (rc != 0)
    {
        ::close(notify[0]);
        return;
    }
    pid_ = pid;
    pollfd p{notify[0], POLLIN, 0};
    char byte = 0;
    while (::poll(&p, 1, registerTimeoutMs) < 0 && errno == EINTR)
    {
    }
    while (::read(notify[0], &byte, 1) < 0 && errno == EINTR)
    {
    }
    ::close(notify[0]);
}

PolkitAgent::~PolkitAgent()
{
    if (pid_ <= 0)
    {
        return;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR)
    {
    }
}

} // namespace lvkeeper::ctl
