pub fn render_html() {}
