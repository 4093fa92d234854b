#pragma once

// How lvkeeperctl prints: human sizes and times, tables that fit the terminal, JSON.

#include "options.hpp"

#include <nlohmann/json.hpp>
#include <sdbus-c++/Types.h>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace lvkeeper::ctl
{

/// JSON that keeps the order we write it in (id before severity before fix).
using Json = nlohmann::ordered_json;

/// "3min 20s", "1h 5min", "2d 3h", "45s", "0s": the two largest units, as systemd prints spans.
std::string formatTimespan(std::chrono::microseconds span);

/// Local time of a CLOCK_REALTIME timestamp in microseconds: "2026-12-01 12:00:01".
std::string formatTimestamp(std::uint64_t usec);

/// "30.5%".
std::string formatPercent(double percent);

/// A property value as JSON: numbers stay numbers (sizes in bytes), strings strings.
Json toJson(const sdbus::Variant& value);

/// Prints one JSON document on its own line(s).
void printJson(std::ostream& out, const Json& document, JsonMode mode);

/// "●" where the terminal's charset can show it, "*" elsewhere, as systemctl does.
const char* bullet();

/// Columns of text. On a terminal, the columns marked to wrap are wrapped to its width; in a pipe every row
/// stays one line, so grep and awk see one record per line.
class Table
{
  public:
    /// wrap: for each column, whether it may be wrapped.
    Table(std::vector<std::string> headers, std::vector<bool> wrap);

    void add(std::vector<std::string> row);
    bool empty() const
    {
        return rows_.empty();
    }
    /// legend: print the header line.
    void print(std::ostream& out, bool legend) const;

  private:
    std::vector<std::string> headers_;
    std::vector<bool> wrap_;
    std::vector<std::vector<std::string>> rows_;
};

/// Whether stdout (fd 1) or stderr (fd 2) is a terminal.
bool isTerminal(int fd);

} // namespace lvkeeper::ctl
