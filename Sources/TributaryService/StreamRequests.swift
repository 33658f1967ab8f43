import FoundationEssentials

/// Any JSON value: the free-form `metadata` and `headers` of a stream request, kept as given.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// The body of DeepStream's `POST /api/v1/stream/add` and `/remove` (nvmultiurisrcbin's REST
/// server), so its clients work unchanged: `{"key":"sensor","value":{…},"headers":{…}}`. Fields
/// it does not know are ignored; the ones it needs are checked by `StreamChange.init`.
struct StreamRequestBody: Decodable {
    struct Sensor: Decodable {
        var camera_id: String?
        var camera_name: String?
        var camera_url: String?
        var change: String?
        var metadata: JSONValue?
    }

    var key: String?
    var value: Sensor?
    var headers: JSONValue?
}

/// A camera to add or remove, as a request asked for it.
public struct StreamChange: Sendable, Equatable {
    public enum Kind: String, Sendable { case add = "camera_add", remove = "camera_remove" }
    public var kind: Kind
    public var cameraID: String
    public var cameraName: String?
    /// Required to add; optional to remove (when given, it must be the camera's).
    public var cameraURL: String?
    public var metadata: JSONValue?

    /// Reads a request body; `expected` is what the endpoint does (add or remove).
    /// - Throws: `StreamRequestError.badRequest` naming the field at fault.
    public init(json body: [UInt8], expected: Kind) throws {
        let request: StreamRequestBody
        do {
            request = try JSONDecoder().decode(StreamRequestBody.self, from: Data(body))
        } catch let error as DecodingError {
            throw StreamRequestError.badRequest(Self.describe(error))
        } catch {
            throw StreamRequestError.badRequest("the body is not JSON: \(error)")
        }
        guard let value = request.value else { throw StreamRequestError.badRequest("missing field: value") }
        guard let cameraID = value.camera_id, !cameraID.isEmpty else { throw StreamRequestError.badRequest("missing field: value.camera_id") }
        if let change = value.change, change != expected.rawValue {
            throw StreamRequestError.badRequest("value.change is \"\(change)\": this endpoint takes \"\(expected.rawValue)\"")
        }
        if expected == .add, (value.camera_url ?? "").isEmpty { throw StreamRequestError.badRequest("missing field: value.camera_url") }
        kind = expected
        self.cameraID = cameraID
        cameraName = value.camera_name
        cameraURL = value.camera_url.flatMap { $0.isEmpty ? nil : $0 }
        metadata = value.metadata
    }

    public init(kind: Kind, cameraID: String, cameraName: String? = nil, cameraURL: String? = nil, metadata: JSONValue? = nil) {
        self.kind = kind
        self.cameraID = cameraID
        self.cameraName = cameraName
        self.cameraURL = cameraURL
        self.metadata = metadata
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type for field \(path(context)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing field: \((context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))"
        case .dataCorrupted(let context):
            return "malformed JSON\(context.codingPath.isEmpty ? "" : " at \(path(context))"): \(context.debugDescription)"
        @unknown default:
            return "malformed JSON"
        }
    }
}

/// Why a stream request failed, with the HTTP status it answers.
public enum StreamRequestError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Malformed JSON, a missing or wrong field, a URI that cannot be opened: 400.
    case badRequest(String)
    /// No such camera: 404.
    case unknownCamera(String)
    /// A camera with that id is present: 409.
    case conflict(String)
    /// The pipeline is not running (starting or stopping): 503.
    case unavailable(String)

    public var status: Int {
        switch self {
        case .badRequest: return 400
        case .unknownCamera: return 404
        case .conflict: return 409
        case .unavailable: return 503
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let reason), .unknownCamera(let reason), .conflict(let reason), .unavailable(let reason): return reason
        }
    }
}
