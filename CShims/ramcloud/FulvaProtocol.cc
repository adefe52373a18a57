/* Copyright (c) 2026 Fulva authors.
 *
 * The client side of fulva.h's protocol calls: requests sent to a server
 * the caller names (the source or the destination of a migration), not to
 * the owner RAMCloud's tablet map points at, and never retried here. The
 * caller (FulvaCore's client rules, in Swift) decides what a reply means
 * and where the next request goes; this file only moves the bytes.
 * Compiled into libramcloud and the server (see FulvaDirect.h).
 */

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ClientException.h"
#include "CoordinatorClient.h"
#include "Cycles.h"
#include "Dispatch.h"
#include "LinearizableObjectRpcWrapper.h"
#include "Object.h"
#include "RamCloud.h"
#include "RpcWrapper.h"
#include "ServerList.pb.h"
#include "TransportManager.h"
#include "WireFormat.h"
#include "fulva/FulvaClient.h"
#include "fulva/FulvaDirect.h"
#include "fulva/FulvaShim.h"

namespace RAMCloud {
namespace {

using FulvaClient::report;




/// What every direct request shares: how it ends. Any status is the
/// caller's to interpret. A transport failure (the session was aborted)
/// is met as RAMCloud's own wrappers meet it: a fresh session to the same
/// server and the same request again (a write keeps its RIFL id, so it
/// takes effect once); the caller's deadline bounds the retries.
class DirectRequest {
  public:
    DirectRequest(Context* context, uint64_t server)
        : transportFailed(false)
        , directContext(context)
        , directServer(server)
    {}
    virtual ~DirectRequest() {}
    virtual bool ready() = 0;
    virtual void abandon() = 0;
    /// Fills in the outcome from a finished request.
    virtual void collect(fulva_client_outcome* outcome) = 0;
    bool transportFailed;

  protected:
    /// A new session to the server after `dead` failed, or NULL.
    Transport::SessionRef reconnect(Transport::SessionRef dead)
    {
        if (dead)
            directContext->transportManager->flushSession(
                    dead->serviceLocator);
        return FulvaDirect::session(directContext, directServer);
    }

    Context* directContext;
    uint64_t directServer;
    DISALLOW_COPY_AND_ASSIGN(DirectRequest);
};

/// FULVA_READ to one server.
class DirectRead : public RpcWrapper, public DirectRequest {
  public:
    DirectRead(Context* context, Transport::SessionRef target,
               const fulva_client_operation& operation)
        : RpcWrapper(sizeof(WireFormat::FulvaRead::Response))
        , DirectRequest(context, operation.server)
        , valueBuffer(operation.valueBuffer)
        , valueCapacity(operation.valueCapacity)
    {
        WireFormat::FulvaRead::Request* reqHdr =
                allocHeader<WireFormat::FulvaRead>();
        reqHdr->tableId = operation.tableId;
        reqHdr->keyLength = operation.keyLength;
        reqHdr->hintMigration = operation.hintMigration;
        reqHdr->hintEpoch = operation.hintEpoch;
        request.appendCopy(operation.key, operation.keyLength);
        session = target;
        send();
    }

    bool ready() { return isReady(); }
    void abandon() { cancel(); }

    void collect(fulva_client_outcome* outcome)
    {
        const WireFormat::FulvaRead::Response* respHdr =
                response->getStart<WireFormat::FulvaRead::Response>();
        outcome->status = respHdr->common.status;
        if (respHdr->common.status != STATUS_OK)
            return;
        uint32_t offset = sizeof32(*respHdr);
        uint32_t valueLength = respHdr->valueLength;
        uint32_t tagLength = respHdr->tagLength;
        outcome->answer = respHdr->answer;
        outcome->version = respHdr->version;
        outcome->valueLength = valueLength;
        if (valueBuffer != NULL)
            response->copy(offset, std::min(valueLength, valueCapacity),
                           valueBuffer);
        offset += valueLength;
        outcome->tagLength = response->copy(offset,
                std::min(tagLength, FULVA_TAG_CAPACITY), outcome->tag);
    }

  PROTECTED:
    bool checkStatus() { return true; }
    bool handleTransportError()
    {
        session = reconnect(session);
        if (!session) {
            transportFailed = true;
            return true;
        }
        send();
        return false;
    }

  PRIVATE:
    void* valueBuffer;
    uint32_t valueCapacity;
    DISALLOW_COPY_AND_ASSIGN(DirectRead);
};

/**
 * A write, remove or increment sent to one server as RAMCloud's own RPC,
 * with a RIFL id from the connection's tracker (the destination holds the
 * source's completion records, so a retry there is recognized).
 */
template<typename Op>
class DirectUpdate : public LinearizableObjectRpcWrapper,
                     public DirectRequest {
  public:
    DirectUpdate(RamCloud* ramcloud, Transport::SessionRef target,
                 const fulva_client_operation& operation)
        : LinearizableObjectRpcWrapper(ramcloud, true, operation.tableId,
                operation.key, operation.keyLength,
                sizeof(typename Op::Response))
        , DirectRequest(ramcloud->clientContext, operation.server)
        , target(target)
    {
        typename Op::Request* reqHdr = allocHeader<Op>();
        reqHdr->tableId = operation.tableId;
        RejectRules rules = {};
        if (operation.rejectRules != NULL) {
            rules.givenVersion = operation.rejectRules->givenVersion;
            rules.doesntExist = operation.rejectRules->doesntExist;
            rules.exists = operation.rejectRules->exists;
            rules.versionLeGiven = operation.rejectRules->versionLeGiven;
            rules.versionNeGiven = operation.rejectRules->versionNeGiven;
        }
        reqHdr->rejectRules = rules;
        fill(reqHdr, operation);
        fillLinearizabilityHeader<typename Op::Request>(reqHdr);
        send();
    }

    bool ready() { return isReady(); }
    void abandon() { cancel(); }
    void collect(fulva_client_outcome* outcome);

  PROTECTED:
    bool checkStatus() { return true; }
    bool handleTransportError()
    {
        target = reconnect(target);
        if (!target) {
            transportFailed = true;
            return true;
        }
        send();
        return false;
    }
    /// To the chosen server, whatever the tablet map says.
    void send()
    {
        session = target;
        state = IN_PROGRESS;
        session->sendRequest(&request, response, this);
    }

  PRIVATE:
    void fill(WireFormat::Write::Request* reqHdr,
              const fulva_client_operation& operation)
    {
        Key key(operation.tableId, operation.key, operation.keyLength);
        uint32_t length = 0;
        Object::appendKeysAndValueToBuffer(key, operation.value,
                operation.valueLength, &request, true, &length);
        reqHdr->length = length;
        reqHdr->async = 0;
    }
    void fill(WireFormat::Remove::Request* reqHdr,
              const fulva_client_operation& operation)
    {
        reqHdr->keyLength = operation.keyLength;
        request.appendCopy(operation.key, operation.keyLength);
    }
    void fill(WireFormat::Increment::Request* reqHdr,
              const fulva_client_operation& operation)
    {
        reqHdr->keyLength = operation.keyLength;
        reqHdr->incrementInt64 = operation.delta;
        reqHdr->incrementDouble = 0.0;
        request.appendCopy(operation.key, operation.keyLength);
    }

    Transport::SessionRef target;
    DISALLOW_COPY_AND_ASSIGN(DirectUpdate);
};

template<>
void
DirectUpdate<WireFormat::Write>::collect(fulva_client_outcome* outcome)
{
    const WireFormat::Write::Response* respHdr =
            response->getStart<WireFormat::Write::Response>();
    outcome->status = respHdr->common.status;
    outcome->version = respHdr->version;
}

template<>
void
DirectUpdate<WireFormat::Remove>::collect(fulva_client_outcome* outcome)
{
    const WireFormat::Remove::Response* respHdr =
            response->getStart<WireFormat::Remove::Response>();
    outcome->status = respHdr->common.status;
    outcome->version = respHdr->version;
}

template<>
void
DirectUpdate<WireFormat::Increment>::collect(fulva_client_outcome* outcome)
{
    const WireFormat::Increment::Response* respHdr =
            response->getStart<WireFormat::Increment::Response>();
    outcome->status = respHdr->common.status;
    outcome->version = respHdr->version;
    outcome->newValue = respHdr->newValue.asInt64;
}

/// The FULVA_PULL inventory (migration id 0) of one key range, bucket
/// range by bucket range.
class InventoryRpc : public RpcWrapper {
  public:
    InventoryRpc(Transport::SessionRef target, uint64_t serverId,
                 const fulva_tablet& tablet, uint64_t firstBucket)
        : RpcWrapper(sizeof(WireFormat::FulvaPull::Response))
    {
        WireFormat::FulvaPull::Request* reqHdr =
                allocHeader<WireFormat::FulvaPull>(ServerId(serverId));
        reqHdr->migrationId = 0;
        reqHdr->tablet = tablet;
        reqHdr->firstBucket = firstBucket;
        reqHdr->endBucket = ~0UL;
        reqHdr->maxBytes = 0;
        session = target;
        send();
    }
    const WireFormat::FulvaPull::Response* reply(Context* context)
    {
        waitInternal(context->dispatch);
        if (getState() != FINISHED)
            throw Exception(HERE, "no reply to the inventory");
        if (responseHeader->status != STATUS_OK)
            ClientException::throwException(HERE, responseHeader->status);
        return response->getStart<WireFormat::FulvaPull::Response>();
    }
    DISALLOW_COPY_AND_ASSIGN(InventoryRpc);
};

} // namespace

Transport::SessionRef
FulvaDirect::Locators::session(Context* context, uint64_t serverId)
{
    std::string locator;
    if (!find(serverId, &locator)) {
        ProtoBuf::ServerList list;
        CoordinatorClient::getServerList(context, &list);
        std::lock_guard<std::mutex> guard(mutex);
        for (int i = 0; i < list.server_size(); i++)
            byId[list.server(i).server_id()] =
                    list.server(i).service_locator();
    }
    if (!find(serverId, &locator))
        return Transport::SessionRef();
    return context->transportManager->getSession(locator);
}

bool
FulvaDirect::Locators::find(uint64_t serverId, std::string* locator)
{
    std::lock_guard<std::mutex> guard(mutex);
    auto it = byId.find(serverId);
    if (it == byId.end())
        return false;
    *locator = it->second;
    return true;
}

Transport::SessionRef
FulvaDirect::session(Context* context, uint64_t serverId)
{
    if (context->fulvaShim != NULL)
        return context->fulvaShim->session(serverId);
    // A context without a connection of its own: look the id up afresh.
    Locators uncached;
    return uncached.session(context, serverId);
}

int
FulvaDirect::execute(RamCloud& ramcloud,
                     const fulva_client_operation* operations,
                     fulva_client_outcome* outcomes, size_t count,
                     uint32_t timeoutMicros)
{
    {
        Context* context = ramcloud.clientContext;
        uint64_t deadline = Cycles::rdtsc() +
                Cycles::fromMicroseconds(timeoutMicros);
        std::vector<std::unique_ptr<DirectRequest>> requests(count);
        std::vector<bool> done(count, false);
        for (size_t i = 0; i < count; i++) {
            const fulva_client_operation& op = operations[i];
            memset(&outcomes[i], 0, offsetof(fulva_client_outcome, tag));
            Transport::SessionRef target =
                    FulvaDirect::session(context, op.server);
            if (!target) {
                outcomes[i].status = STATUS_SERVER_NOT_UP;
                done[i] = true;
                continue;
            }
            switch (op.kind) {
            case FULVA_OPERATION_READ:
                requests[i].reset(new DirectRead(context, target, op));
                break;
            case FULVA_OPERATION_WRITE:
                requests[i].reset(new DirectUpdate<WireFormat::Write>(
                        &ramcloud, target, op));
                break;
            case FULVA_OPERATION_REMOVE:
                requests[i].reset(new DirectUpdate<WireFormat::Remove>(
                        &ramcloud, target, op));
                break;
            default:
                requests[i].reset(new DirectUpdate<WireFormat::Increment>(
                        &ramcloud, target, op));
                break;
            }
        }
        // All at once: a dual read's two requests are in flight together.
        while (true) {
            bool pending = false;
            for (size_t i = 0; i < count; i++) {
                if (!done[i] && requests[i]->ready())
                    done[i] = true;
                pending |= !done[i];
            }
            if (!pending || Cycles::rdtsc() > deadline)
                break;
            context->dispatch->poll();
        }
        for (size_t i = 0; i < count; i++) {
            if (!requests[i])
                continue;
            if (!done[i]) {
                requests[i]->abandon();
                outcomes[i].status = FULVA_ERROR_UNAVAILABLE;
            } else if (requests[i]->transportFailed) {
                outcomes[i].status = FULVA_ERROR_UNAVAILABLE;
            } else {
                requests[i]->collect(&outcomes[i]);
            }
        }
        return FULVA_OK;
    }
}


} // namespace RAMCloud

using namespace RAMCloud; // NOLINT
using RAMCloud::FulvaClient::guarded;

extern "C" int
fulva_client_execute(struct rc_client* client,
                     const struct fulva_client_operation* operations,
                     struct fulva_client_outcome* outcomes, size_t count,
                     uint32_t timeoutMicros, char* error, size_t errorLength)
{
    if ((operations == NULL || outcomes == NULL) && count > 0) {
        report(error, errorLength, "missing operations or outcomes");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    for (size_t i = 0; i < count; i++) {
        if (operations[i].key == NULL ||
                operations[i].kind < FULVA_OPERATION_READ ||
                operations[i].kind > FULVA_OPERATION_INCREMENT) {
            report(error, errorLength, "an operation without a key or of an "
                   "unknown kind");
            return FULVA_ERROR_INVALID_ARGUMENT;
        }
    }
    return guarded(client, error, errorLength, [&](RamCloud& ramcloud) {
        return FulvaDirect::execute(ramcloud, operations, outcomes, count,
                                    timeoutMicros);
    });
}

extern "C" uint64_t
fulva_key_hash(uint64_t tableId, const void* key, uint16_t keyLength)
{
    return Key::getHash(tableId, key, keyLength);
}

extern "C" int
fulva_admin_inventory(struct rc_client* client, uint64_t server,
                      const struct fulva_tablet* tablet,
                      struct fulva_tablet_inventory* inventory,
                      char* error, size_t errorLength)
{
    if (tablet == NULL || inventory == NULL) {
        report(error, errorLength, "missing tablet or output");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    *inventory = {0, 0};
    return guarded(client, error, errorLength, [&](RamCloud& ramcloud) {
        Context* context = ramcloud.clientContext;
        Transport::SessionRef target = FulvaDirect::session(context, server);
        if (!target)
            throw ClientException(HERE, STATUS_SERVER_NOT_UP);
        uint64_t bucket = 0;
        // Each reply ends at a bucket boundary; the last says ~0.
        for (int round = 0; round < 1 << 20; round++) {
            InventoryRpc rpc(target, server, *tablet, bucket);
            const WireFormat::FulvaPull::Response* respHdr =
                    rpc.reply(context);
            inventory->objects += respHdr->objects;
            inventory->bytes += respHdr->bytes;
            if (respHdr->resumeBucket == ~0UL ||
                    respHdr->resumeBucket <= bucket)
                break;
            bucket = respHdr->resumeBucket;
        }
        return FULVA_OK;
    });
}
