/// One detected object before it becomes `ObjectMeta`: class, confidence and a box in the
/// network input's pixels (after the letterbox is undone, in muxer pixels).
public struct Detection: Sendable, Equatable {
    public var classID: Int
    public var confidence: Float
    public var rect: Rect
    public init(classID: Int, confidence: Float, rect: Rect) {
        self.classID = classID
        self.confidence = confidence
        self.rect = rect
    }
}

/// nvinfer's `cluster-mode`. Tributary runs NMS (2) and no clustering (4); the OpenCV
/// groupRectangles (0), DBSCAN (1) and hybrid (3) modes are refused with a clear error.
public enum ClusterMode: Int, Sendable, Equatable {
    case groupRectangles = 0, dbscan = 1, nms = 2, hybrid = 3, none = 4
}

/// Per-class detection settings, nvinfer's `[class-attrs-all]` and `[class-attrs-<id>]`.
public struct ClassAttributes: Sendable, Equatable {
    /// Detections below this confidence are dropped before clustering.
    public var preClusterThreshold: Float = 0.2
    /// Post-cluster threshold (nvinfer `post-cluster-threshold`); 0 keeps all.
    public var postClusterThreshold: Float = 0
    /// IoU above which NMS suppresses the weaker box of the same class.
    public var nmsIoUThreshold: Float = 0.3
    /// Keep at most this many objects of the class (highest confidence first); -1 keeps all.
    public var topK: Int = -1
    /// Minimum and maximum box size in muxer pixels; 0 means no limit.
    public var detectedMinWidth: Int = 0
    public var detectedMinHeight: Int = 0
    public var detectedMaxWidth: Int = 0
    public var detectedMaxHeight: Int = 0

    public init() {}
}

/// How the model's outputs are laid out (our `output-parser` key).
public enum OutputParserKind: String, Sendable, Equatable, CaseIterable {
    /// `[N, boxes, 5 + C]`: cx, cy, w, h in input pixels, objectness, C class probabilities.
    case yolo
    /// `[N, 4 + C, boxes]`: cx, cy, w, h in input pixels, C class scores (no objectness).
    case yolov8
    /// TensorFlow-style SSD: boxes `[N, K, 4]` (ymin, xmin, ymax, xmax, normalised), scores
    /// `[N, K]`, classes `[N, K]`, count `[N]`.
    case ssd
}
