package shop

import (
	"fmt"
	"html/template"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// qrQuietZone is the blank margin, in modules, that readers need around a QR code.
const qrQuietZone = 4

// qrSVG draws text as a QR code in inline SVG: one path of the dark modules, scaled by the
// page's CSS, with a title for screen readers. The library encodes (Reed–Solomon, masking);
// drawing is ours, so no image library or PNG step is needed.
func qrSVG(text, title string) (template.HTML, error) {
	code, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return "", fmt.Errorf("qr code: %w", err)
	}
	var grab bitmapWriter
	if err := code.Save(&grab); err != nil {
		return "", fmt.Errorf("qr code: %w", err)
	}
	size := len(grab.bits) + 2*qrQuietZone
	var path strings.Builder
	for y, row := range grab.bits {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x+qrQuietZone, y+qrQuietZone)
			}
		}
	}
	// Only digits and the escaped title reach the markup.
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-labelledby="qr-title" class="qr" shape-rendering="crispEdges">`+
		`<title id="qr-title">%s</title><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		size, size, template.HTMLEscapeString(title), size, size, path.String())), nil
}

// bitmapWriter is a qrcode.Writer that keeps the matrix as booleans (true is dark).
type bitmapWriter struct{ bits [][]bool }

func (b *bitmapWriter) Write(m qrcode.Matrix) error {
	b.bits = m.Bitmap()
	return nil
}

func (b *bitmapWriter) Close() error { return nil }
