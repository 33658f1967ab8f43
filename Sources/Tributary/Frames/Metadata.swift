/// Metadata of a batch, named as DeepStream users know it (NvDsBatchMeta).
public struct BatchMeta: Sendable {
    public var batchID: Int
    /// One entry per frame of the batch, in the batch's order.
    public var frames: [FrameMeta]
    public init(batchID: Int, frames: [FrameMeta]) {
        self.batchID = batchID
        self.frames = frames
    }
}

/// Metadata of one frame (NvDsFrameMeta).
public struct FrameMeta: Sendable {
    public var sourceID: Int
    public var batchID: Int
    public var frameNumber: Int
    public var pts: UInt64?
    public var objects: [ObjectMeta]
    /// The detector ran on this frame (NvDsFrameMeta's `bInferDone`); false on the frames its
    /// `interval` skips, whose objects (if any) come from the tracker.
    public var inferenceDone = false
    /// What the analytics found on the frame, when analytics run (`AnalyticsStage`).
    public var analytics: FrameAnalytics?
    /// The size the source decodes at (its boxes' scale is this over the muxer's size).
    public var sourceSize: PixelSize?
    /// Lines and texts the OSD draws on the frame's tile besides its objects (NvDsDisplayMeta):
    /// the analytics' regions, lines and counts, or whatever a probe adds.
    public var display = DisplayMeta()
    public init(sourceID: Int, batchID: Int, frameNumber: Int, pts: UInt64?, objects: [ObjectMeta]) {
        self.sourceID = sourceID
        self.batchID = batchID
        self.frameNumber = frameNumber
        self.pts = pts
        self.objects = objects
    }
}

/// A rectangle in muxer pixels.
public struct Rect: Equatable, Sendable {
    public var left: Float, top: Float, width: Float, height: Float
    public init(left: Float, top: Float, width: Float, height: Float) {
        self.left = left; self.top = top; self.width = width; self.height = height
    }
}

/// A point in muxer pixels.
public struct Point: Sendable, Equatable {
    public var x: Float
    public var y: Float
    public init(x: Float, y: Float) { self.x = x; self.y = y }
}

/// One detected object (NvDsObjectMeta).
public struct ObjectMeta: Sendable {
    public var classID: Int
    public var label: String
    public var confidence: Float
    public var rect: Rect
    /// The detector's `gie-unique-id`.
    public var detectorID: Int
    /// The tracker's id of the object (unique per source and run, never reused); nil without a
    /// tracker, or while its track is not yet confirmed.
    public var trackerID: UInt64?
    /// The box is the tracker's estimate on a frame the detector skipped (`interval`), with the
    /// confidence of the object's last detection.
    public var isTracked = false
    /// What the analytics found of the object, when analytics run.
    public var analytics: ObjectAnalytics?
    public init(classID: Int, label: String, confidence: Float, rect: Rect, detectorID: Int, trackerID: UInt64? = nil) {
        self.classID = classID
        self.label = label
        self.confidence = confidence
        self.rect = rect
        self.detectorID = detectorID
        self.trackerID = trackerID
    }
}

/// What the OSD draws on a frame besides its objects (NvDsDisplayMeta), in muxer pixels like the
/// objects' rects, scaled into the frame's tile with them; after the objects, lines before texts.
public struct DisplayMeta: Sendable, Equatable {
    /// A straight segment `width` muxer pixels thick (at least one output pixel).
    public struct Line: Sendable, Equatable {
        public var from: Point, to: Point
        public var width: Float
        public var colour: RGBA
        public init(from: Point, to: Point, width: Float = 2, colour: RGBA) {
            self.from = from; self.to = to; self.width = width; self.colour = colour
        }
    }

    /// One line of text on a background of `colour` (the text black or white, whichever reads),
    /// its background's top-left corner at `origin`. A text whose origin is the previous text's
    /// goes below it, so a probe can stack lines without knowing the output's font size.
    public struct Text: Sendable, Equatable {
        public var origin: Point
        public var text: String
        public var colour: RGBA
        public init(_ text: String, at origin: Point, colour: RGBA) {
            self.text = text; self.origin = origin; self.colour = colour
        }
    }

    public var lines: [Line] = []
    public var texts: [Text] = []
    public init(lines: [Line] = [], texts: [Text] = []) { self.lines = lines; self.texts = texts }

    public var isEmpty: Bool { lines.isEmpty && texts.isEmpty }
}
