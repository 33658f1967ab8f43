/// Frames a decoder lost (a corrupt or cut bitstream: it drops or cannot rebuild them), seen as
/// gaps in a constant-rate stream's timestamps: a step of about k frame intervals between two
/// frames it gave is k − 1 frames missing. Steps within half an interval of one are jitter, not
/// loss. Pure: timestamps in, frames missing out.
struct TimestampGaps: Sendable {
    /// Nanoseconds between two frames at the stream's rate.
    let interval: Double
    private var last: UInt64?

    /// nil for a rate that is not fixed (0/1: variable) or not positive.
    init?(frameRate: (numerator: Int, denominator: Int)) {
        guard frameRate.numerator > 0, frameRate.denominator > 0 else { return nil }
        interval = 1e9 * Double(frameRate.denominator) / Double(frameRate.numerator)
    }

    /// The frames missing right before the frame at `pts` (presentation order, nanoseconds).
    mutating func missing(before pts: UInt64) -> Int {
        defer { last = max(last ?? pts, pts) }
        guard let last, pts > last else { return 0 }
        return max(0, Int((Double(pts - last) / interval).rounded()) - 1)
    }
}
