/* Copyright (c) 2026 Fulva authors.
 *
 * Cluster administration entry points of fulva.h, over RAMCloud's client
 * library. Linked into libramcloud, so a program that dlopen()s the library
 * (rc-migrate, the tests) reaches calls that CRamCloud.h does not offer,
 * without linking any RAMCloud header.
 */

#include <cstdio>
#include <exception>

#include "ClientException.h"
#include "RamCloud.h"
#include "fulva.h"

namespace {

/// Writes a message into the caller's buffer, always terminated.
void
report(char* error, size_t errorLength, const char* what)
{
    if (error != NULL && errorLength > 0)
        snprintf(error, errorLength, "%s", what);
}

/**
 * Runs one administrative call with a fresh client and turns every
 * exception into a status: nothing may unwind into C or Swift callers.
 */
template<typename Call>
int
guarded(const char* coordinator, const char* cluster, char* error,
        size_t errorLength, Call call)
{
    if (coordinator == NULL) {
        report(error, errorLength, "no coordinator locator");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    try {
        RAMCloud::RamCloud ramcloud(coordinator,
                                    cluster != NULL ? cluster : "main");
        call(ramcloud);
        report(error, errorLength, "");
        return FULVA_OK;
    } catch (RAMCloud::ClientException& e) {
        report(error, errorLength, e.str().c_str());
        return static_cast<int>(e.status);
    } catch (RAMCloud::Exception& e) {
        report(error, errorLength, e.str().c_str());
        return FULVA_ERROR_UNAVAILABLE;
    } catch (std::exception& e) {
        report(error, errorLength, e.what());
        return FULVA_ERROR_INTERNAL;
    } catch (...) {
        report(error, errorLength, "unknown C++ exception");
        return FULVA_ERROR_INTERNAL;
    }
}

} // namespace

extern "C" uint32_t
fulva_abi_version(void)
{
    return FULVA_ABI_VERSION;
}

extern "C" int
fulva_admin_migrate_tablet(const char* coordinator, const char* cluster,
                           uint64_t tableId, uint64_t firstKeyHash,
                           uint64_t lastKeyHash, uint64_t newOwner,
                           char* error, size_t errorLength)
{
    if (firstKeyHash > lastKeyHash) {
        report(error, errorLength, "first key hash above the last one");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(coordinator, cluster, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        ramcloud.migrateTablet(tableId, firstKeyHash, lastKeyHash,
                               RAMCloud::ServerId(newOwner));
    });
}

extern "C" int
fulva_admin_split_tablet(const char* coordinator, const char* cluster,
                         const char* table, uint64_t splitKeyHash,
                         char* error, size_t errorLength)
{
    if (table == NULL) {
        report(error, errorLength, "no table name");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(coordinator, cluster, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        ramcloud.splitTablet(table, splitKeyHash);
    });
}
