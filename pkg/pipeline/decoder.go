package pipeline

import (
	"fmt"

	"github.com/go-gst/go-gst/gst"
)

// videoDecoder is the appsrc caps and decoder chain for an encoded video input. An H.264 input's
// decoder is picked when its first SPS is parsed (pickH264Decoder): the chain is the parser and,
// not linked to it, the identity the picked decoder is linked to.
func videoDecoder(codec string) (caps, chain string, err error) {
	switch codec {
	case "h264":
		return "video/x-h264,stream-format=byte-stream,alignment=au",
			fmt.Sprintf("h264parse name=%s   identity name=%s silent=true", h264Pick, h264Picked), nil
	case "vp8":
		return "video/x-vp8", "vp8dec", nil
	case "vp9":
		return "video/x-vp9", "vp9dec", nil
	}
	return "", "", fmt.Errorf("%w: cannot decode %q", ErrPipeline, codec)
}

// The parser and the identity an H.264 decoder is linked between.
const (
	h264Pick   = "h264pick"
	h264Picked = "h264picked"
)

// h264DecoderFor is the decoder for an H.264 profile (as h264parse names it). Baseline streams
// (what browsers publish over WebRTC: CAVLC, no B-frames) go to OpenH264, which decodes them to
// the same pixels as libav's decoder for 0.01–0.03 core more at 720p30, and spares the job the
// ≈ 35 MB of RSS that loading libav costs (gst-libav maps 190 libraries); CABAC profiles (main,
// high) go to libav, 2.6× faster there. The libav decoder is single-threaded: frame threads cost
// memory (one frame pool each) for little at 720p.
func h264DecoderFor(profile string) (factory string, props map[string]any) {
	switch profile {
	case "constrained-baseline", "baseline":
		if gst.Find("openh264dec") != nil {
			return "openh264dec", nil
		}
	}
	return "avdec_h264", map[string]any{"max-threads": 1}
}

// pickH264Decoder links the decoder h264DecoderFor picks between bin's h264pick and h264picked when
// the parser has read the stream's first SPS (its caps then carry the size and profile; the caps it
// forwards before that are dropped). A bin without them is left alone.
func pickH264Decoder(bin *gst.Bin) {
	pick, err := bin.GetElementByName(h264Pick)
	if err != nil {
		return
	}
	picked, err := bin.GetElementByName(h264Picked)
	if err != nil {
		return
	}
	pick.GetStaticPad("src").AddProbe(gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		ev := info.GetEvent()
		if ev == nil || ev.Type() != gst.EventTypeCaps {
			return gst.PadProbeOK
		}
		st := ev.ParseCaps().GetStructureAt(0)
		if st == nil {
			return gst.PadProbeDrop
		}
		if _, err := st.GetValue("width"); err != nil {
			return gst.PadProbeDrop // no SPS parsed yet
		}
		profile := ""
		if v, err := st.GetValue("profile"); err == nil {
			profile, _ = v.(string)
		}
		factory, props := h264DecoderFor(profile)
		dec, err := gst.NewElementWithProperties(factory, props)
		if err == nil {
			err = bin.Add(dec)
		}
		if err == nil {
			err = pick.Link(dec)
		}
		if err == nil {
			err = dec.Link(picked)
		}
		if err != nil {
			pick.ErrorMessage(gst.DomainCore, gst.CoreErrorMissingPlugin,
				fmt.Sprintf("cannot decode H.264 (%s profile) with %s: are gstreamer1.0-libav and gstreamer1.0-plugins-bad installed?", profile, factory), err.Error())
			return gst.PadProbeDrop
		}
		dec.SyncStateWithParent()
		return gst.PadProbeRemove
	})
}
