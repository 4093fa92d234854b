#pragma once

// The commands of lvkeeperctl. Each returns its exit status or throws Failure.

#include "client.hpp"
#include "options.hpp"

#include "format.hpp"

#include <string>

namespace lvkeeper::ctl
{

/// A property value for people: sizes with units, percents, spans, timestamps, yes/no.
std::string describeProperty(const std::string& name, const sdbus::Variant& value);

/// The mount point of the volume object at path, if known, else the path.
std::string volumeName(const std::string& path, const Properties& properties);

int status(Client& client, const Options& options);
int grow(Client& client, const Options& options);
int addDisk(Client& client, const Options& options);
int remount(Client& client, const Options& options);
int diagnose(Client& client, const Options& options);
int repair(Client& client, const Options& options);
int monitor(Client& client, const Options& options);

/// --version: this client's version and, when it runs, the daemon's. Never fails on the daemon's account.
int version(const Options& options);

} // namespace lvkeeper::ctl
