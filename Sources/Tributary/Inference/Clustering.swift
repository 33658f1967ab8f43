/// nvinfer's post-processing of one frame's detections: clustering, top-k, post-cluster threshold
/// and the detected-size filter.
public enum Clustering {
    /// nvinfer's clustering for one frame: per-class NMS (cluster-mode 2) or none (4), then per-class top-k
    /// (highest confidence first), then the post-cluster threshold. Input already passed the pre-cluster threshold.
    /// Output sorted by class id, then confidence descending (stable and deterministic).
    ///
    /// The OpenCV-based modes (`.groupRectangles`, `.dbscan`, `.hybrid`) are refused by the config;
    /// should one arrive here anyway it is treated as NMS rather than crashing the pipeline.
    /// Detections with a NaN confidence are dropped (they cannot be ordered).
    public static func cluster(_ detections: [Detection], mode: ClusterMode, attributes: (Int) -> ClassAttributes) -> [Detection] {
        guard !detections.isEmpty else { return [] }
        let suppress = mode != .none
        var result: [Detection] = []
        result.reserveCapacity(detections.count)

        detections.withUnsafeBufferPointer { input in
            // Sort indices, not values; the index tiebreak makes the order total, hence deterministic.
            var order = input.indices.filter { !input[$0].confidence.isNaN }
            order.sort { i, j in
                let a = input[i], b = input[j]
                if a.classID != b.classID { return a.classID < b.classID }
                if a.confidence != b.confidence { return a.confidence > b.confidence }
                return i < j
            }

            var start = 0
            while start < order.count {
                let classID = input[order[start]].classID
                var end = start + 1
                while end < order.count, input[order[end]].classID == classID { end += 1 }

                let attrs = attributes(classID)
                let limit = attrs.topK < 0 ? Int.max : attrs.topK
                let groupStart = result.count
                for index in order[start..<end] {
                    // Greedy NMS never revisits a kept box, so stopping at top-k equals NMS-then-top-k.
                    if result.count - groupStart >= limit { break }
                    let candidate = input[index]
                    if suppress {
                        var suppressed = false
                        for kept in groupStart..<result.count where iou(result[kept].rect, candidate.rect) > attrs.nmsIoUThreshold {
                            suppressed = true
                            break
                        }
                        if suppressed { continue }
                    }
                    result.append(candidate)
                }
                // The group is in descending confidence, so the boxes below the threshold are a suffix.
                if attrs.postClusterThreshold > 0 {
                    while result.count > groupStart, !(result[result.count - 1].confidence >= attrs.postClusterThreshold) {
                        result.removeLast()
                    }
                }
                start = end
            }
        }
        return result
    }

    /// Drops boxes outside detected-min/max-w/h (0 = no limit) — applied by the detector after mapping to muxer pixels.
    /// Limits are inclusive; the order of the survivors is kept.
    public static func filterSize(_ detections: [Detection], attributes: (Int) -> ClassAttributes) -> [Detection] {
        detections.filter { detection in
            let a = attributes(detection.classID)
            let w = detection.rect.width, h = detection.rect.height
            // Written as "keep if" so a NaN size fails any limit that is set.
            return (a.detectedMinWidth <= 0 || w >= Float(a.detectedMinWidth))
                && (a.detectedMinHeight <= 0 || h >= Float(a.detectedMinHeight))
                && (a.detectedMaxWidth <= 0 || w <= Float(a.detectedMaxWidth))
                && (a.detectedMaxHeight <= 0 || h <= Float(a.detectedMaxHeight))
        }
    }

    /// Intersection over union of two rects (0 when either is empty).
    @inline(__always)
    public static func iou(_ a: Rect, _ b: Rect) -> Float {
        // `> 0` also rejects NaN sizes.
        guard a.width > 0, a.height > 0, b.width > 0, b.height > 0 else { return 0 }
        let iw = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
        let ih = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
        guard iw > 0, ih > 0 else { return 0 }
        let intersection = iw * ih
        let union = a.width * a.height + b.width * b.height - intersection
        return union > 0 ? intersection / union : 0
    }
}
