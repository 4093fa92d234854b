#include "format.hpp"

#include <langinfo.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace lvkeeper::ctl
{

namespace
{

// Characters, not bytes: a UTF-8 continuation byte takes no column.
std::size_t textWidth(const std::string& text)
{
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(),
                                                  [](char c)
                                                  {
                                                      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
                                                  }));
}

// The byte offset where the first `columns` characters end.
std::size_t byteOffset(const std::string& text, std::size_t columns)
{
    std::size_t seen = 0;
    for (std::size_t i = 0; i < text.size(); ++i)
    {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
        {
            if (seen == columns)
            {
                return i;
            }
            ++seen;
        }
    }
    return text.size();
}

std::vector<std::string> wrapText(const std::string& text, std::size_t width)
{
    std::vector<std::string> lines;
    std::string line;
    std::size_t pos = 0;
    while (pos < text.size())
    {
        const std::size_t space = text.find(' ', pos);
        std::string word = text.substr(pos, space == std::string::npos ? std::string::npos : space - pos);
        pos = space == std::string::npos ? text.size() : space + 1;
        if (word.empty())
        {
            continue;
        }
        if (!line.empty() && textWidth(line) + 1 + textWidth(word) > width)
        {
            lines.push_back(line);
            line.clear();
        }
        while (textWidth(word) > width)
        {
            if (!line.empty())
            {
                lines.push_back(line);
                line.clear();
            }
            const std::size_t cut = byteOffset(word, width);
            lines.push_back(word.substr(0, cut));
            word = word.substr(cut);
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty() || lines.empty())
    {
        lines.push_back(line);
    }
    return lines;
}

std::size_t terminalWidth()
{
    winsize size{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    {
        return size.ws_col;
    }
    if (const char* columns = std::getenv("COLUMNS"); columns && std::atoi(columns) > 0)
    {
        return static_cast<std::size_t>(std::atoi(columns));
    }
    return 80;
}

} // namespace

std::string formatTimespan(std::chrono::microseconds span)
{
    static constexpr struct
    {
        const char* suffix;
        std::int64_t usec;
    } units[] = {
        {"d", 86400000000LL}, {"h", 3600000000LL}, {"min", 60000000LL}, {"s", 1000000LL}, {"ms", 1000LL},
    };
    std::int64_t rest = std::max<std::int64_t>(span.count(), 0);
    std::string out;
    int parts = 0;
    for (const auto& unit : units)
    {
        // Milliseconds only for spans under a second: "1.4s" would be false precision beside "3min".
        if (parts == 2 || (unit.usec == 1000LL && (parts > 0 || span.count() >= 1000000LL)))
        {
            break;
        }
        const std::int64_t count = rest / unit.usec;
        if (count == 0 && parts == 0)
        {
            continue;
        }
        rest -= count * unit.usec;
        if (count > 0)
        {
            out += (out.empty() ? "" : " ") + std::to_string(count) + unit.suffix;
        }
        ++parts;
    }
    return out.empty() ? "0s" : out;
}

std::string formatTimestamp(std::uint64_t usec)
{
    const auto seconds = static_cast<std::time_t>(usec / 1000000);
    std::tm local{};
    char text[64] = "";
    if (::localtime_r(&seconds, &local) && std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &local) > 0)
    {
        return text;
    }
    return std::to_string(usec) + "us";
}

std::string formatPercent(double percent)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f%%", percent);
    return text;
}

Json toJson(const sdbus::Variant& value)
{
    const std::string type = value.peekValueType();
    if (type == "s" || type == "o" || type == "g")
    {
        return value.get<std::string>();
    }
    if (type == "t")
    {
        return value.get<std::uint64_t>();
    }
    if (type == "x")
    {
        return value.get<std::int64_t>();
    }
    if (type == "u")
    {
        return value.get<std::uint32_t>();
    }
    if (type == "i")
    {
        return value.get<std::int32_t>();
    }
    if (type == "q")
    {
        return value.get<std::uint16_t>();
    }
    if (type == "n")
    {
        return value.get<std::int16_t>();
    }
    if (type == "y")
    {
        return value.get<std::uint8_t>();
    }
    if (type == "b")
    {
        return value.get<bool>();
    }
    if (type == "d")
    {
        const auto number = value.get<double>();
        return std::isfinite(number) ? Json(number) : Json(nullptr);
    }
    if (type == "as")
    {
        return value.get<std::vector<std::string>>();
    }
    // A type this client does not know yet: say what it is rather than fail.
    return Json{{"type", type}};
}

void printJson(std::ostream& out, const Json& document, JsonMode mode)
{
    out << document.dump(mode == JsonMode::Pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace) << "\n";
}

const char* bullet()
{
    const char* charset = ::nl_langinfo(CODESET);
    return charset && std::strcmp(charset, "UTF-8") == 0 ? "\u25cf" : "*";
}

Table::Table(std::vector<std::string> headers, std::vector<bool> wrap) :
    headers_(std::move(headers)), wrap_(std::move(wrap))
{
    wrap_.resize(headers_.size(), false);
}

void Table::add(std::vector<std::string> row)
{
    row.resize(headers_.size());
    rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out, bool legend) const
{
    const std::size_t n = headers_.size();
    std::vector<std::size_t> width(n, 0);
    for (std::size_t c = 0; c < n; ++c)
    {
        width[c] = legend ? textWidth(headers_[c]) : 0;
        for (const auto& row : rows_)
        {
            width[c] = std::max(width[c], textWidth(row[c]));
        }
    }
    if (isTerminal(STDOUT_FILENO))
    {
        // Wrapping columns share what the others leave of the terminal, each at least 20 wide.
        std::size_t fixed = 2 * (n - 1);
        std::vector<std::size_t> wrapping;
        for (std::size_t c = 0; c < n; ++c)
        {
            if (wrap_[c])
            {
                wrapping.push_back(c);
            }
            else
            {
                fixed += width[c];
            }
        }
        const std::size_t total = terminalWidth();
        std::size_t left = total > fixed ? total - fixed : 0;
        std::sort(wrapping.begin(), wrapping.end(),
                  [&](std::size_t a, std::size_t b)
                  {
                      return width[a] < width[b];
                  });
        for (std::size_t i = 0; i < wrapping.size(); ++i)
        {
            const std::size_t share = std::max<std::size_t>(left / (wrapping.size() - i), 20);
            width[wrapping[i]] = std::min(width[wrapping[i]], share);
            left -= std::min(left, width[wrapping[i]]);
        }
    }
    auto printRow = [&](const std::vector<std::string>& row)
    {
        std::vector<std::vector<std::string>> cells(n);
        std::size_t height = 1;
        for (std::size_t c = 0; c < n; ++c)
        {
            cells[c] = wrap_[c] && textWidth(row[c]) > width[c] ? wrapText(row[c], width[c])
                                                                : std::vector<std::string>{row[c]};
            height = std::max(height, cells[c].size());
        }
        for (std::size_t line = 0; line < height; ++line)
        {
            std::string text;
            for (std::size_t c = 0; c < n; ++c)
            {
                const std::string cell = line < cells[c].size() ? cells[c][line] : "";
                text += cell;
                if (c + 1 < n)
                {
                    text += std::string(width[c] - std::min(width[c], textWidth(cell)) + 2, ' ');
                }
            }
            while (!text.empty() && text.back() == ' ')
            {
                text.pop_back();
            }
            out << text << "\n";
        }
    };
    if (legend)
    {
        printRow(headers_);
    }
    for (const auto& row : rows_)
    {
        printRow(row);
    }
}

bool isTerminal(int fd)
{
    return ::isatty(fd) == 1;
}

} // namespace lvkeeper::ctl
