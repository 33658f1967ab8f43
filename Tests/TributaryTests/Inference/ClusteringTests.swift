import Testing
@testable import Tributary

@Suite struct ClusteringTests {
    static func det(_ classID: Int, _ confidence: Float, _ left: Float, _ top: Float, _ width: Float, _ height: Float) -> Detection {
        Detection(classID: classID, confidence: confidence, rect: Rect(left: left, top: top, width: width, height: height))
    }

    static func attrs(nms: Float = 0.5, topK: Int = -1, post: Float = 0) -> ClassAttributes {
        var a = ClassAttributes()
        a.nmsIoUThreshold = nms
        a.topK = topK
        a.postClusterThreshold = post
        return a
    }

    // MARK: NMS

    @Test func overlappingSameClassKeepsTheStronger() {
        // IoU = 81 / 119 ≈ 0.68 > 0.5; the weaker comes first in the input.
        let weak = Self.det(0, 0.75, 1, 1, 10, 10), strong = Self.det(0, 0.875, 0, 0, 10, 10)
        let result = Clustering.cluster([weak, strong], mode: .nms, attributes: { _ in Self.attrs() })
        #expect(result == [strong])
    }

    @Test func sameBoxesDifferentClassesAreBothKeptSortedByClass() {
        let a = Self.det(1, 0.875, 0, 0, 10, 10), b = Self.det(0, 0.75, 1, 1, 10, 10)
        let result = Clustering.cluster([a, b], mode: .nms, attributes: { _ in Self.attrs() })
        #expect(result == [b, a])
    }

    @Test func iouExactlyAtThresholdIsKept() {
        // (0,0,3,1) vs (1,0,3,1): intersection 2, union 4, IoU exactly 0.5.
        let a = Self.det(0, 0.875, 0, 0, 3, 1), b = Self.det(0, 0.75, 1, 0, 3, 1)
        #expect(Clustering.cluster([b, a], mode: .nms, attributes: { _ in Self.attrs(nms: 0.5) }) == [a, b])
        #expect(Clustering.cluster([b, a], mode: .nms, attributes: { _ in Self.attrs(nms: 0.4375) }) == [a])
    }

    @Test func suppressionComparesOnlyAgainstKeptBoxes() {
        // a–b and b–c overlap with IoU 1/3 > 0.25; a–c do not overlap. b is suppressed by a,
        // so c (which only overlaps the suppressed b) survives.
        let a = Self.det(0, 0.875, 0, 0, 10, 10), b = Self.det(0, 0.75, 5, 0, 10, 10), c = Self.det(0, 0.625, 10, 0, 10, 10)
        #expect(Clustering.cluster([c, b, a], mode: .nms, attributes: { _ in Self.attrs(nms: 0.25) }) == [a, c])
    }

    @Test func equalConfidenceTiesGoToTheLowerInputIndex() {
        let first = Self.det(0, 0.5, 0, 0, 10, 10), second = Self.det(0, 0.5, 1, 0, 10, 10)
        #expect(Clustering.cluster([first, second], mode: .nms, attributes: { _ in Self.attrs() }) == [first])
        #expect(Clustering.cluster([second, first], mode: .nms, attributes: { _ in Self.attrs() }) == [second])
        #expect(Clustering.cluster([second, first], mode: .none, attributes: { _ in Self.attrs() }) == [second, first])
    }

    @Test func nmsThresholdIsPerClass() {
        // Same geometry (IoU 1/3) in both classes; only class 1's threshold (0.25) suppresses.
        let input = [Self.det(0, 0.875, 0, 0, 10, 10), Self.det(0, 0.75, 5, 0, 10, 10),
                     Self.det(1, 0.875, 0, 0, 10, 10), Self.det(1, 0.75, 5, 0, 10, 10)]
        let result = Clustering.cluster(input, mode: .nms, attributes: { Self.attrs(nms: $0 == 1 ? 0.25 : 0.5) })
        #expect(result == [input[0], input[1], input[2]])
    }

    @Test func unsupportedModesBehaveAsNMS() {
        let weak = Self.det(0, 0.75, 1, 1, 10, 10), strong = Self.det(0, 0.875, 0, 0, 10, 10)
        for mode in [ClusterMode.groupRectangles, .dbscan, .hybrid] {
            #expect(Clustering.cluster([weak, strong], mode: mode, attributes: { _ in Self.attrs() }) == [strong])
        }
    }

    // MARK: top-k and post-cluster threshold

    @Test func topKIsPerClass() {
        let input = [
            Self.det(0, 0.5, 0, 0, 10, 10), Self.det(0, 0.875, 20, 0, 10, 10),
            Self.det(0, 0.75, 40, 0, 10, 10), Self.det(0, 0.625, 60, 0, 10, 10),
            Self.det(1, 0.25, 0, 0, 10, 10), Self.det(1, 0.375, 20, 0, 10, 10),
            Self.det(2, 0.99, 0, 0, 10, 10),
        ]
        let topK = [0: 2, 1: -1, 2: 0]
        let result = Clustering.cluster(input, mode: .nms, attributes: { Self.attrs(topK: topK[$0]!) })
        #expect(result == [input[1], input[2], input[5], input[4]])
    }

    @Test func topKCountsBoxesThatSurviveNMS() {
        // The 0.75 box is suppressed by the 0.875 one, so the top 2 are 0.875 and 0.625.
        let input = [Self.det(0, 0.875, 0, 0, 10, 10), Self.det(0, 0.75, 1, 0, 10, 10), Self.det(0, 0.625, 40, 0, 10, 10),
                     Self.det(0, 0.5, 80, 0, 10, 10)]
        #expect(Clustering.cluster(input, mode: .nms, attributes: { _ in Self.attrs(topK: 2) }) == [input[0], input[2]])
    }

    @Test func postClusterThreshold() {
        let input = [Self.det(0, 0.875, 0, 0, 10, 10), Self.det(0, 0.5, 20, 0, 10, 10), Self.det(0, 0.625, 40, 0, 10, 10),
                     Self.det(1, 0.5, 0, 0, 10, 10)]
        let post = [0: Float(0.625), 1: Float(0.25)]
        let result = Clustering.cluster(input, mode: .nms, attributes: { Self.attrs(post: post[$0]!) })
        // 0.625 passes its own threshold (inclusive), 0.5 of class 0 does not.
        #expect(result == [input[0], input[2], input[3]])
        // Top-k first, then the threshold: top 1 of class 0 is 0.875.
        let both = Clustering.cluster(input, mode: .nms, attributes: { Self.attrs(topK: 1, post: post[$0]!) })
        #expect(both == [input[0], input[3]])
    }

    @Test func modeNoneKeepsEverythingSortedButStillAppliesTopKAndThreshold() {
        let input = [Self.det(1, 0.5, 0, 0, 10, 10), Self.det(0, 0.75, 0, 0, 10, 10), Self.det(0, 0.875, 0, 0, 10, 10),
                     Self.det(0, 0.875, 1, 1, 10, 10)]
        #expect(Clustering.cluster(input, mode: .none, attributes: { _ in Self.attrs() }) == [input[2], input[3], input[1], input[0]])
        #expect(Clustering.cluster(input, mode: .none, attributes: { _ in Self.attrs(topK: 1) }) == [input[2], input[0]])
        #expect(Clustering.cluster(input, mode: .none, attributes: { _ in Self.attrs(post: 0.75) }) == [input[2], input[3], input[1]])
    }

    @Test func emptyInputAndNaNConfidence() {
        #expect(Clustering.cluster([], mode: .nms, attributes: { _ in Self.attrs() }) == [])
        let nan = Self.det(0, .nan, 0, 0, 10, 10), good = Self.det(0, 0.5, 50, 0, 10, 10)
        #expect(Clustering.cluster([nan, good], mode: .nms, attributes: { _ in Self.attrs() }) == [good])
    }

    // MARK: size filter

    @Test func filterSizeIsInclusiveAndPerClass() {
        var limited = ClassAttributes()
        limited.detectedMinWidth = 10
        limited.detectedMinHeight = 5
        limited.detectedMaxWidth = 100
        limited.detectedMaxHeight = 50
        let input = [
            Self.det(0, 0.5, 0, 0, 10, 5),      // exactly the minimums: kept
            Self.det(0, 0.5, 0, 0, 9.5, 20),    // too narrow
            Self.det(0, 0.5, 0, 0, 20, 4),      // too short
            Self.det(0, 0.5, 0, 0, 100, 50),    // exactly the maximums: kept
            Self.det(0, 0.5, 0, 0, 101, 20),    // too wide
            Self.det(0, 0.5, 0, 0, 20, 51),     // too tall
            Self.det(1, 0.5, 0, 0, 1000, 1),    // class 1 has no limits
        ]
        let result = Clustering.filterSize(input, attributes: { $0 == 0 ? limited : ClassAttributes() })
        #expect(result == [input[0], input[3], input[6]])
    }

    @Test func filterSizeZeroMeansNoLimit() {
        var minOnly = ClassAttributes()
        minOnly.detectedMinWidth = 8
        let input = [Self.det(0, 0.5, 0, 0, 7, 1000), Self.det(0, 0.5, 0, 0, 5000, 1)]
        #expect(Clustering.filterSize(input, attributes: { _ in minOnly }) == [input[1]])
    }

    // MARK: IoU

    @Test func iouOfKnownRects() {
        func r(_ l: Float, _ t: Float, _ w: Float, _ h: Float) -> Rect { Rect(left: l, top: t, width: w, height: h) }
        // Intersection 1, union 3.
        #expect(Clustering.iou(r(0, 0, 2, 1), r(1, 0, 2, 1)) == Float(1) / Float(3))
        // Intersection 2, union 4.
        #expect(Clustering.iou(r(0, 0, 3, 1), r(1, 0, 3, 1)) == 0.5)
        #expect(Clustering.iou(r(1, 0, 3, 1), r(0, 0, 3, 1)) == 0.5)
        // Contained: 4 / 16.
        #expect(Clustering.iou(r(0, 0, 4, 4), r(1, 1, 2, 2)) == 0.25)
        // Diagonal overlap: 1×1 of 4 + 4 − 1.
        #expect(Clustering.iou(r(0, 0, 2, 2), r(1, 1, 2, 2)) == Float(1) / Float(7))
        #expect(Clustering.iou(r(5, 5, 10, 20), r(5, 5, 10, 20)) == 1)
        #expect(Clustering.iou(r(0, 0, 2, 2), r(2, 0, 2, 2)) == 0)    // touching edges
        #expect(Clustering.iou(r(0, 0, 2, 2), r(10, 10, 2, 2)) == 0)  // disjoint
        #expect(Clustering.iou(r(0, 0, 0, 2), r(0, 0, 2, 2)) == 0)    // empty
        #expect(Clustering.iou(r(0, 0, 2, 2), r(0, 0, 2, -1)) == 0)   // negative height
    }
}
