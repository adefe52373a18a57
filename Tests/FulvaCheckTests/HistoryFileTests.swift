import FulvaCheck
import Foundation
import Testing

@Suite struct HistoryFileTests {
    /// Every input and output case, nil and extreme values included.
    static let history = History(
        operations: [
            op(0, .read, found(.min, .max), -5, 10, routing: OperationRouting(roundTrips: 2, dualRead: true)),
            op(1, .read, .absent, 0, 1),
            op(2, write(.max, RecordedRejectRules(givenVersion: 7, doesntExist: true, exists: true,
                                                  versionLeGiven: true, versionNeGiven: true)),
               .rejected(.wrongVersion), 1, 2),
            op(3, write(-1), written(9), 2, 3, key: "key with \"quotes\" and / slash"),
            op(4, remove, .removed(version: nil), 3, 4),
            op(5, .remove(rejectRules: RecordedRejectRules(exists: true)), .removed(version: 12), 4, 5),
            op(6, increment(-3), incremented(-3, 13), 5, 6, onMigratingTablet: false),
            op(7, increment(2), nil, 6, 7, routing: OperationRouting(priorityFetches: 3, progressBytes: 40, replies: 4)),
            RecordedOperation(id: 8, client: 3, group: 100, kind: .multiWrite, rpcID: .max, key: "k",
                              input: write(1), output: .rejected(.objectExists), invokedAt: 7, completedAt: 8),
        ],
        initialValues: ["k": RecordedInitialObject(value: 5, version: 1), "ü": RecordedInitialObject(value: -5, version: 2)],
        timeline: MigrationTimeline(startedAt: 3))

    @Test func roundTrip() throws {
        let data = try HistoryFile.encode(Self.history)
        #expect(try HistoryFile.decode(data) == Self.history)
        #expect(try HistoryFile.encode(Self.history) == data, "the same history gives the same bytes")
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 1 + Self.history.operations.count)
        #expect(lines[0].hasPrefix("{\"format\":\"fulva-history\""))
    }

    @Test func roundTripThroughAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fulva-history-\(UUID()).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try HistoryFile.write(Self.history, to: url)
        #expect(try HistoryFile.read(from: url) == Self.history)
    }

    @Test func blankLinesAndCRLFAreAccepted() throws {
        let text = String(decoding: try HistoryFile.encode(Self.history), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: "\r\n\n")
        #expect(try HistoryFile.decode(Data(text.utf8)) == Self.history)
    }

    /// Throws the `HistoryFileError` decoding `lines` raises.
    func error(decoding lines: [String]) -> HistoryFileError? {
        do {
            _ = try HistoryFile.decode(Data(lines.joined(separator: "\n").utf8))
            return nil
        } catch {
            return error as? HistoryFileError
        }
    }

    @Test func malformedLinesAreNamed() throws {
        let valid = String(decoding: try HistoryFile.encode(Self.history), as: UTF8.self)
            .split(separator: "\n").map(String.init)

        let garbage = try #require(error(decoding: [valid[0], valid[1], "", "{not json", valid[2]]))
        #expect(garbage.line == 4)
        #expect(garbage.description.hasPrefix("history file, line 4: not an operation"))

        let missing = valid[1].replacingOccurrences(of: "\"invokedAt\":-5,", with: "")
        let missingField = try #require(error(decoding: [valid[0], missing]))
        #expect(missingField.line == 2)
        #expect(missingField.reason.contains("missing field invokedAt"), "\(missingField)")

        let wrongType = valid[1].replacingOccurrences(of: "\"client\":0", with: "\"client\":\"zero\"")
        #expect(try #require(error(decoding: [valid[0], valid[1], wrongType])).reason.contains("client"))

        let headerless = try #require(error(decoding: [valid[1]]))
        #expect(headerless.line == 1 && headerless.reason.hasPrefix("expected the header"))

        #expect(error(decoding: [])?.line == 1)
        let otherFormat = valid[0].replacingOccurrences(of: "fulva-history", with: "porcupine")
        #expect(error(decoding: [otherFormat])?.reason == "format is \"porcupine\", expected \"fulva-history\"")
    }
}
