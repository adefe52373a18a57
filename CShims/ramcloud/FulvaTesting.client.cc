/* Copyright (c) 2026 Fulva authors.
 *
 * Test-only client calls of fulva.h: they reproduce, on purpose, network
 * events a test cannot otherwise arrange. Linked into libramcloud.
 */

#include <cstdio>

#include "ClientException.h"
#include "Cycles.h"
#include "Dispatch.h"
#include "ObjectFinder.h"
#include "RamCloud.h"
#include "fulva/FulvaClient.h"

namespace RAMCloud {
namespace {

/**
 * An INCREMENT whose first reply is thrown away, as if the network had
 * lost it. Until it is sent again and waited for, its RIFL id stays
 * unacknowledged, so the server that executed it keeps its completion
 * record, and a migration must hand that record to the destination.
 */
class LostReplyIncrement : public IncrementInt64Rpc {
  public:
    LostReplyIncrement(RamCloud* ramcloud, uint64_t tableId, const void* key,
                       uint16_t keyLength, int64_t delta)
        : IncrementInt64Rpc(ramcloud, tableId, key, keyLength, delta)
    {}

    /// Waits for the first reply without using it.
    bool dropReply(double seconds)
    {
        uint64_t deadline = Cycles::rdtsc() + Cycles::fromSeconds(seconds);
        while (!isReady()) {
            if (Cycles::rdtsc() > deadline)
                return false;
            context->dispatch->poll();
        }
        return true;
    }

    /// The client's retry: the same request (same RIFL id), routed afresh.
    void resend()
    {
        response->reset();
        context->objectFinder->flush(tableId);
        send();
    }
    DISALLOW_COPY_AND_ASSIGN(LostReplyIncrement);
};

} // namespace
} // namespace RAMCloud

using RAMCloud::LostReplyIncrement;
using RAMCloud::FulvaClient::ramcloudOf;
using RAMCloud::FulvaClient::report;

extern "C" int
fulva_testing_increment_losing_reply(struct rc_client* client,
                                     uint64_t tableId, const void* key,
                                     uint16_t keyLength, int64_t delta,
                                     void** handle, char* error,
                                     size_t errorLength)
{
    if (client == NULL || key == NULL || handle == NULL) {
        report(error, errorLength, "missing argument");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    try {
        LostReplyIncrement* rpc = new LostReplyIncrement(
                ramcloudOf(client), tableId, key, keyLength, delta);
        if (!rpc->dropReply(10.0)) {
            delete rpc;
            report(error, errorLength, "no reply within 10 s");
            return FULVA_ERROR_UNAVAILABLE;
        }
        *handle = rpc;
        return FULVA_OK;
    } catch (RAMCloud::Exception& e) {
        report(error, errorLength, e.str());
        return FULVA_ERROR_INTERNAL;
    }
}

extern "C" int
fulva_testing_retry_increment(struct rc_client* client, void* handle,
                              int64_t* newValue, char* error,
                              size_t errorLength)
{
    if (client == NULL || handle == NULL || newValue == NULL) {
        report(error, errorLength, "missing argument");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    LostReplyIncrement* rpc = static_cast<LostReplyIncrement*>(handle);
    try {
        rpc->resend();
        *newValue = rpc->wait();
        delete rpc;
        return FULVA_OK;
    } catch (RAMCloud::ClientException& e) {
        delete rpc;
        report(error, errorLength, e.str());
        return static_cast<int>(e.status);
    } catch (RAMCloud::Exception& e) {
        delete rpc;
        report(error, errorLength, e.str());
        return FULVA_ERROR_INTERNAL;
    }
}
