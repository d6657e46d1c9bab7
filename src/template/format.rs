//! The CLI's `-t` output format (Nomad's `Format` in `command/data_format.go`): a value, as the
//! API names its fields, formatted by a Go template with Go's built-in functions only.

use serde::Serialize;

/// Why a `-t` template did not format.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("Error parsing the template: {0}")]
    Parse(gotmpl::TemplateError),
    #[error("Error formatting the data: {0}")]
    Data(gotmpl::TemplateError),
    #[error("Error executing the template: {0}")]
    Execute(gotmpl::TemplateError),
    #[error("Error executing the template: the output is not UTF-8")]
    NotUtf8,
}

/// `value` formatted by the template `source` (`{{range .}}{{.ID}}{{end}}`).
pub fn format_value<T: Serialize + ?Sized>(source: &str, value: &T) -> Result<String, FormatError> {
    let data = gotmpl::to_value(value).map_err(FormatError::Data)?;
    let template = gotmpl::Template::new("format")
        .parse(source)
        .map_err(FormatError::Parse)?;
    let mut out = Vec::new();
    template
        .execute(&mut out, &data)
        .map_err(FormatError::Execute)?;
    String::from_utf8(out).map_err(|_| FormatError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Item {
        #[serde(rename = "ID")]
        id: &'static str,
        status: &'static str,
        count: u32,
    }

    #[test]
    fn fields_are_read_by_their_api_names() {
        let items = [
            Item {
                id: "a1",
                status: "running",
                count: 2,
            },
            Item {
                id: "b2",
                status: "dead",
                count: 0,
            },
        ];
        let text = format_value(
            r#"{{range .}}{{.ID}}={{.Status}}{{if gt .Count 0}}+{{end}} {{end}}"#,
            &items,
        )
        .expect("formats");
        assert_eq!(text, "a1=running+ b2=dead ");
    }

    #[test]
    fn a_broken_template_names_the_problem() {
        let err = format_value("{{.ID", &[0u8]).expect_err("refused");
        assert!(matches!(err, FormatError::Parse(_)), "{err}");
        assert!(err.to_string().starts_with("Error parsing the template"));
    }
}
