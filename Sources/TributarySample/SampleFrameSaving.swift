import Tributary

/// The base sample's frame saving (`--save-frames`): for each stream, when its frame counter is a
/// multiple of 30 and the frame holds an object with 0.3 < confidence < 0.4, those objects boxed
/// and captioned `<class>,C=<confidence>`.
public enum SampleFrameSaving {
    public static let minimumConfidence: Float = 0.3
    public static let maximumConfidence: Float = 0.4
    public static let everyNthFrame = 30

    /// The sample's saver for `folder` (refused when it exists, with the sample's message).
    public static func frameSaver(folder: String, sourceCount: Int) throws -> FrameSaver {
        try FrameSaver(folder: folder, sourceCount: sourceCount, everyNthFrame: everyNthFrame,
                       selects: { $0.confidence > minimumConfidence && $0.confidence < maximumConfidence }, caption: caption(for:))
    }

    /// `<class>,C=<confidence with 2 decimals>`, as the sample writes it.
    @Sendable public static func caption(for object: ObjectMeta) -> String {
        let hundredths = Int((object.confidence * 100).rounded())
        return "\(object.label),C=\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}
