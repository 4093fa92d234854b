// A stand-in for polkitd on the private test bus: owns org.freedesktop.PolicyKit1, answers
// CheckAuthorization from a table and records every question it was asked.
//
//   fake-polkit TABLE LOG
//
// TABLE is re-read for every question; a line is "ACTION UID ANSWER [DELAY_MS]" with ACTION and UID
// possibly "*", ANSWER one of yes, no, challenge, error. The first matching line wins; none: no.
// LOG gets one line per question: "action=A kind=K name=N uid=U flags=F details=D", uid being the
// one the bus says owns the subject's name (so the test sees whom lvkeeperd asked about).
#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

namespace
{

using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
using AuthResult = sdbus::Struct<bool, bool, std::map<std::string, std::string>>;

struct Answer
{
    std::string kind = "no";
    int delayMs = 0;
};

Answer lookup(const std::string& table, const std::string& action, const std::string& uid)
{
    std::ifstream in(table);
    std::string line;
    while (std::getline(in, line))
    {
        std::istringstream fields(line);
        std::string a, u;
        Answer answer;
        if (!(fields >> a >> u >> answer.kind))
        {
            continue;
        }
        fields >> answer.delayMs;
        if ((a == "*" || a == action) && (u == "*" || u == uid))
        {
            return answer;
        }
    }
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
    {
        std::cerr << "usage: fake-polkit TABLE LOG\n";
        return 2;
    }
    const std::string table = argv[1];
    const std::string logPath = argv[2];

    auto connection = sdbus::createSystemBusConnection("org.freedesktop.PolicyKit1");
    auto busDriver = sdbus::createProxy(*connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    auto authority = sdbus::createObject(*connection, "/org/freedesktop/PolicyKit1/Authority");

    authority->registerMethod("CheckAuthorization")
        .onInterface("org.freedesktop.PolicyKit1.Authority")
        .implementedAs(
            [&](sdbus::Result<AuthResult>&& result, Subject subject, std::string action,
                std::map<std::string, std::string> details, std::uint32_t flags, std::string)
            {
                std::string name;
                auto it = subject.get<1>().find("name");
                if (it != subject.get<1>().end())
                {
                    name = it->second.get<std::string>();
                }
                std::string uid = "?";
                try
                {
                    std::uint32_t u = 0;
                    busDriver->callMethod("GetConnectionUnixUser")
                        .onInterface("org.freedesktop.DBus")
                        .withArguments(name)
                        .storeResultsTo(u);
                    uid = std::to_string(u);
                }
                catch (const sdbus::Error&)
                {
                }
                {
                    std::ofstream log(logPath, std::ios::app);
                    log << "action=" << action << " kind=" << subject.get<0>() << " name=" << name << " uid=" << uid
                        << " flags=" << flags << " details=" << details.size() << "\n";
                }
                Answer answer = lookup(table, action, uid);
                auto reply = [result = std::move(result), answer]() mutable
                {
                    if (answer.delayMs > 0)
                    {
                        std::this_thread::sleep_for(std::chrono::milliseconds(answer.delayMs));
                    }
                    if (answer.kind == "error")
                    {
                        result.returnError(sdbus::Error("org.freedesktop.PolicyKit1.Error.Failed", "fake failure"));
                        return;
                    }
                    result.returnResults(AuthResult(answer.kind == "yes", answer.kind == "challenge",
                                                    std::map<std::string, std::string>{}));
                };
                if (answer.delayMs > 0)
                {
                    // A slow polkit (a password prompt): answer later, from another thread.
                    std::thread(std::move(reply)).detach();
                }
                else
                {
                    reply();
                }
            });
    authority->finishRegistration();
    std::cout << "ready" << std::endl;
    connection->enterEventLoop();
    return 0;
}
