/* Test helper: writes a PDF with cairo, one page per argument.
 *   mkpdf OUT [--title T] TEXT...
 * A page whose TEXT is empty has no text layer (a rectangle only), as a
 * scanned page would. A TEXT starting with "scan:" is drawn into a 300 dpi
 * image that is all the page holds: a scanned page with those words on it,
 * for OCR. Long TEXT wraps every 80 bytes. */
#include <cairo-pdf.h>
#include <cairo.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkpdf OUT [--title T] TEXT...\n");
        return 2;
    }
    cairo_surface_t *s = cairo_pdf_surface_create(argv[1], 595, 842);
    int i = 2;
    if (argc > 4 && strcmp(argv[2], "--title") == 0) {
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, argv[3]);
        i = 4;
    }
    cairo_t *cr = cairo_create(s);
    for (; i < argc; i++) {
        const char *t = argv[i];
        size_t n = strlen(t);
        if (strncmp(t, "scan:", 5) == 0) {
            /* black words on white at 300 dpi (x 300/72), painted as an image */
            double k = 300.0 / 72.0;
            cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24,
                                                              (int)(595 * k), (int)(842 * k));
            cairo_t *ic = cairo_create(img);
            cairo_set_source_rgb(ic, 1, 1, 1);
            cairo_paint(ic);
            cairo_scale(ic, k, k);
            cairo_set_source_rgb(ic, 0, 0, 0);
            cairo_select_font_face(ic, "serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(ic, 22);
            cairo_move_to(ic, 50, 120);
            cairo_show_text(ic, t + 5);
            cairo_destroy(ic);
            cairo_save(cr);
            cairo_scale(cr, 1 / k, 1 / k);
            cairo_set_source_surface(cr, img, 0, 0);
            cairo_paint(cr);
            cairo_restore(cr);
            cairo_surface_destroy(img);
            cairo_show_page(cr);
            continue;
        }
        if (n == 0) {
            cairo_rectangle(cr, 100, 100, 300, 400);
            cairo_fill(cr);
        }
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 11);
        double y = 60;
        for (size_t off = 0; off < n && y < 800; off += 80, y += 14) {
            char line[81];
            size_t k = n - off < 80 ? n - off : 80;
            memcpy(line, t + off, k);
            line[k] = '\0';
            cairo_move_to(cr, 40, y);
            cairo_show_text(cr, line);
        }
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_finish(s);
    int bad = cairo_surface_status(s) != CAIRO_STATUS_SUCCESS;
    cairo_surface_destroy(s);
    if (bad)
        fprintf(stderr, "mkpdf: cannot write '%s'\n", argv[1]);
    return bad;
}
