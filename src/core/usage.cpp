#include "lvkeeper/system.hpp"

namespace lvkeeper
{

double FsUsage::usedPercent() const
{
    // df leaves the root reserve out of the denominator: a full fs for ordinary writers is 100%.
    const std::uint64_t total = used + available;
    if (total == 0)
    {
        return 0.0;
    }
    return static_cast<double>(used) * 100.0 / static_cast<double>(total);
}

double FsUsage::inodesUsedPercent() const
{
    if (inodes == 0)
    {
        return 0.0;
    }
    return static_cast<double>(inodesUsed) * 100.0 / static_cast<double>(inodes);
}

bool FsUsage::sameAs(const FsUsage& other) const
{
    return size == other.size && used == other.used && available == other.available &&
           inodesUsed == other.inodesUsed && readOnly == other.readOnly;
}

} // namespace lvkeeper
