/* Copyright (c) 2026 Fulva authors.
 *
 * What the client-side files of fulva.h (*.client.cc, linked into
 * libramcloud) share: reaching the RamCloud object behind a CRamCloud.h
 * connection, and turning every exception into a status and a message,
 * since nothing may unwind into C or Swift callers.
 */
#ifndef RAMCLOUD_FULVACLIENT_H
#define RAMCLOUD_FULVACLIENT_H

#include <cstdio>
#include <exception>

#include "ClientException.h"
#include "RamCloud.h"
#include "fulva.h"

struct rc_client;

namespace RAMCloud {
namespace FulvaClient {

/**
 * CRamCloud.cc defines struct rc_client with the RamCloud pointer as its
 * first member and no virtual functions (a standard-layout class), so a
 * pointer to it is also a pointer to that member. CRamCloud.h offers no
 * accessor, and this is the one place that relies on the layout.
 */
inline RamCloud*
ramcloudOf(struct rc_client* client)
{
    return *reinterpret_cast<RamCloud**>(client);
}

/// Writes a message into the caller's buffer, always terminated.
inline void
report(char* error, size_t errorLength, const string& what)
{
    if (error != NULL && errorLength > 0)
        snprintf(error, errorLength, "%s", what.c_str());
}

/**
 * Runs `call` (which returns a fulva.h status) on the caller's connection;
 * clears the message on success.
 */
template<typename Call>
int
guarded(struct rc_client* client, char* error, size_t errorLength, Call call)
{
    if (client == NULL || ramcloudOf(client) == NULL) {
        report(error, errorLength, "no RAMCloud client");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    report(error, errorLength, "");
    try {
        return call(*ramcloudOf(client));
    } catch (ClientException& e) {
        report(error, errorLength, e.status == STATUS_SERVER_NOT_UP
               ? "the server is not a live member of the cluster"
               : e.str());
        return static_cast<int>(e.status);
    } catch (Exception& e) {
        report(error, errorLength, e.str());
        return FULVA_ERROR_UNAVAILABLE;
    } catch (std::exception& e) {
        report(error, errorLength, e.what());
        return FULVA_ERROR_INTERNAL;
    } catch (...) {
        report(error, errorLength, "unknown C++ exception");
        return FULVA_ERROR_INTERNAL;
    }
}

} // namespace FulvaClient
} // namespace RAMCloud

#endif // RAMCLOUD_FULVACLIENT_H
