// Histories on disk as JSON Lines: a header line, then one operation per
// line. One line per operation lets a recorder append as it goes, lets a
// reader report the exact line of a defect, and keeps files greppable.

import Foundation

/// A defect in a history file, with its 1-based line number.
public struct HistoryFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "history file, line \(line): \(reason)" }
}

/// Reads and writes `History` as JSON Lines.
///
/// Line 1: `{"format":"fulva-history","version":1,"initialValues":{…},"timeline":{…}}`.
/// Every following non-blank line: one `RecordedOperation` (its Codable form).
public enum HistoryFile {
    public static let format = "fulva-history"
    public static let version = 1

    private struct Header: Codable {
        var format: String
        var version: Int
        var initialValues: [String: RecordedInitialObject]
        var timeline: MigrationTimeline
    }

    /// Sorted keys: the same history always gives the same bytes.
    private static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func encode(_ history: History) throws -> Data {
        let encoder = makeEncoder()
        var data = try encoder.encode(Header(format: format, version: version,
                                             initialValues: history.initialValues, timeline: history.timeline))
        data.append(0x0A)
        for operation in history.operations {
            data.append(try encoder.encode(operation))
            data.append(0x0A)
        }
        return data
    }

    /// Blank lines are skipped; anything else that is not what its position
    /// calls for throws a `HistoryFileError` naming the line.
    public static func decode(_ data: Data) throws -> History {
        let decoder = JSONDecoder()
        var history = History()
        var sawHeader = false
        for (offset, slice) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            let text = slice.last == 0x0D ? slice.dropLast() : slice
            if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            if !sawHeader {
                let header: Header
                do {
                    header = try decoder.decode(Header.self, from: Data(text))
                } catch {
                    throw HistoryFileError(line: line, reason: "expected the header {\"format\":\"\(format)\",…}: "
                        + describe(error))
                }
                guard header.format == format else {
                    throw HistoryFileError(line: line, reason: "format is \"\(header.format)\", expected \"\(format)\"")
                }
                guard header.version == version else {
                    throw HistoryFileError(line: line, reason: "version \(header.version) is not supported (\(version) is)")
                }
                history.initialValues = header.initialValues
                history.timeline = header.timeline
                sawHeader = true
                continue
            }
            do {
                history.operations.append(try decoder.decode(RecordedOperation.self, from: Data(text)))
            } catch {
                throw HistoryFileError(line: line, reason: "not an operation: " + describe(error))
            }
        }
        guard sawHeader else { throw HistoryFileError(line: 1, reason: "empty file: expected the header") }
        return history
    }

    public static func read(from url: URL) throws -> History {
        try decode(Data(contentsOf: url))
    }

    public static func write(_ history: History, to url: URL) throws {
        try encode(history).write(to: url, options: .atomic)
    }

    /// DecodingError's own description is long and nests the coding path in a
    /// context dump; say what is wrong and where in the object.
    private static func describe(_ error: Error) -> String {
        func path(_ context: DecodingError.Context, _ key: CodingKey? = nil) -> String {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            return keys.isEmpty ? "the line" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                .joined(separator: ".")
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \(path(context, key))"
        case DecodingError.valueNotFound(let type, let context):
            return "null where \(type) is expected at \(path(context))"
        case DecodingError.typeMismatch(let type, let context):
            return "wrong type at \(path(context)): expected \(type)"
        case DecodingError.dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return [context.debugDescription, underlying].compactMap { $0 }.joined(separator: ": ")
                + (context.codingPath.isEmpty ? "" : " at \(path(context))")
        default:
            return "\(error)"
        }
    }
}
